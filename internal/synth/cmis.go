package synth

import (
	"fmt"
	"math"
	"strconv"
)

func (g *gen) cmis() {
	r := g.rng(streamCMIS)
	in, sz := g.in, g.sz
	setID := SetID(in.Year)
	ids := newGUIDs(r)
	// Students registered (not rejected) on each current-year occurrence.
	regsByOcc := map[int][]int{}
	registered := map[[2]int]bool{}
	for i := range in.Registrations {
		rg := &in.Registrations[i]
		registered[[2]int{rg.student, rg.occ}] = true
		if rg.RegStatus != "REJ" && in.Occurrences[rg.occ].year == in.Year {
			regsByOcc[rg.occ] = append(regsByOcc[rg.occ], rg.student)
		}
	}
	const fitted, twoTypes = 0.77, 0.2
	var occs []int
	for o := range in.Occurrences {
		oc := &in.Occurrences[o]
		if oc.year != in.Year || oc.PSL == "LSR" || oc.PSL == "SUMMER" || len(regsByOcc[o]) == 0 || !chance(r, 0.9) {
			continue
		}
		occs = append(occs, o)
	}
	// Group types per occurrence first, then the group size that makes the
	// number of groups come out near the scale's figure (every type of an
	// occurrence has at least one group, so this is not a simple ratio).
	types := make([]int, len(occs))
	for i := range occs {
		types[i] = 1
		if chance(r, twoTypes) {
			types[i] = 2
		}
	}
	groupsFor := func(students int, size float64) int {
		return max(1, int(math.Round(float64(students)*fitted/size)))
	}
	lo, hi := 1.0, 200.0
	for k := 0; k < 40; k++ {
		mid := (lo + hi) / 2
		n := 0
		for i, o := range occs {
			n += types[i] * groupsFor(len(regsByOcc[o]), mid)
		}
		if n > sz.cmisGroups {
			lo = mid
		} else {
			hi = mid
		}
	}
	groupSize := hi
	numByModule := map[string]int{}
	newGroup := func(o int, kind struct{ code, name string }, k int) int {
		oc := &in.Occurrences[o]
		numByModule[oc.ModCode]++
		n := numByModule[oc.ModCode]
		in.Groups = append(in.Groups, Group{
			BDOID:    ids.next(),
			OccBDOID: oc.BDOID,
			GroupID:  oc.ModCode + "-" + strconv.Itoa(n),
			Code:     kind.code + strconv.Itoa(k),
			Name:     kind.name + " " + strconv.Itoa(k),
			ModCode:  oc.ModCode,
			InstCode: oc.MAV + "-" + oc.PSL,
			SetID:    setID,
			Num:      n,
			Capacity: int(math.Ceil(groupSize*1.5)) + r.IntN(8),
			occ:      o,
		})
		return len(in.Groups) - 1
	}
	member := func(gi, student int) {
		grp := &in.Groups[gi]
		in.GroupMembers = append(in.GroupMembers, GroupMember{GroupBDOID: grp.BDOID,
			StudentCode: CMISStudentCode(in.Students[student].Code), OccBDOID: grp.OccBDOID, SetID: setID})
	}
	for i, o := range occs {
		students := append([]int(nil), regsByOcc[o]...)
		first := r.IntN(len(groupKinds))
		for t := 0; t < types[i]; t++ {
			kind := groupKinds[(first+t)%len(groupKinds)]
			n := groupsFor(len(students), groupSize)
			var gs []int
			for k := 1; k <= n; k++ {
				gs = append(gs, newGroup(o, kind, k))
			}
			r.Shuffle(len(students), func(a, b int) { students[a], students[b] = students[b], students[a] })
			// Most students are fitted to a group; the rest are "unfitted".
			k := 0
			for _, s := range students {
				if !chance(r, fitted) {
					continue
				}
				member(gs[k%len(gs)], s)
				k++
			}
			// CMIS lags SITS: now and then a student who is not registered
			// on the occurrence (any more) is still in a group.
			if chance(r, 0.01) {
				s := r.IntN(len(in.Students))
				if !registered[[2]int{s, o}] {
					member(gs[0], s)
				}
			}
		}
		// A group set up for later, with nobody in it yet.
		if chance(r, 0.01) {
			newGroup(o, groupKinds[(first+2)%len(groupKinds)], 1)
		}
	}
	// Members whose code matches no SITS student at all.
	strangers := map[string]bool{}
	for q := 0; q < g.sz.quirks && len(in.Groups) > 0; q++ {
		grp := &in.Groups[r.IntN(len(in.Groups))]
		code := fmt.Sprintf("09%07d", r.IntN(10000000))
		if _, known := g.studentByCode[SITSStudentCode(code)]; known || strangers[code] {
			continue
		}
		strangers[code] = true
		in.GroupMembers = append(in.GroupMembers, GroupMember{GroupBDOID: grp.BDOID, StudentCode: code, OccBDOID: grp.OccBDOID, SetID: setID})
	}
	// Tutors: usually one member of the module's department, sometimes two.
	for gi := range in.Groups {
		grp := &in.Groups[gi]
		staff := g.deptStaff[in.ModuleInstances[in.Occurrences[grp.occ].inst].dept]
		if len(staff) == 0 {
			continue
		}
		n := 1
		switch x := r.IntN(100); {
		case x < 15:
			n = 0
		case x < 30:
			n = 2
		}
		seen := map[int]bool{}
		for k := 0; k < n; k++ {
			st := staff[r.IntN(len(staff))]
			if seen[st] {
				continue
			}
			seen[st] = true
			in.GroupTutors = append(in.GroupTutors, GroupTutor{GroupBDOID: grp.BDOID, StaffUPI: in.Staff[st].UPI, LecturerID: in.Staff[st].LecturerID})
		}
	}
}
