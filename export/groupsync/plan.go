package groupsync

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/mimwarehouse/mim/moodle"
)

// Kind is what one write does.
type Kind string

// The kinds of write, in the order Apply sends them.
const (
	CreateGroup    Kind = "create_group"
	CreateGrouping Kind = "create_grouping"
	Assign         Kind = "assign"
	AddMember      Kind = "add_member"
	RemoveMember   Kind = "remove_member"
	Unassign       Kind = "unassign"
	DeleteGrouping Kind = "delete_grouping"
	DeleteGroup    Kind = "delete_group"
)

// Kinds lists every kind in apply order.
var Kinds = []Kind{CreateGroup, CreateGrouping, Assign, AddMember, RemoveMember, Unassign, DeleteGrouping, DeleteGroup}

// Ref names a group or grouping: by Moodle id when it exists, always by
// idnumber and name.
type Ref struct {
	ID       int64 // 0 when this plan creates it
	IDNumber string
	Name     string
}

// Op is one planned write.
type Op struct {
	Kind           Kind
	CourseID       int64
	CourseIDNumber string
	Group          Ref    // the group created, deleted, assigned, or whose members change
	Grouping       Ref    // the grouping created, deleted, or assigned to
	User           Member // for member changes
	// Deferred ops wait for this plan's deletions: their name is held by a
	// MIM group or grouping that is going (Blocker), so they are sent once
	// it is gone, in the same apply.
	Deferred bool
	Blocker  int64
}

func (op Op) String() string {
	switch op.Kind {
	case CreateGroup, DeleteGroup:
		return fmt.Sprintf("%s %q (%s)%s", op.Kind, op.Group.Name, op.Group.IDNumber, idSuffix(op.Group.ID))
	case CreateGrouping, DeleteGrouping:
		return fmt.Sprintf("%s %q (%s)%s", op.Kind, op.Grouping.Name, op.Grouping.IDNumber, idSuffix(op.Grouping.ID))
	case Assign, Unassign:
		return fmt.Sprintf("%s group %q to grouping %q", op.Kind, op.Group.Name, op.Grouping.Name)
	}
	u := fmt.Sprintf("user %d", op.User.UserID)
	if op.User.UserIDNumber != "" {
		u += " (" + op.User.UserIDNumber + ")"
	}
	return fmt.Sprintf("%s %s, group %q", op.Kind, u, op.Group.Name)
}

func idSuffix(id int64) string {
	if id == 0 {
		return ""
	}
	return fmt.Sprintf(" id %d", id)
}

// Waiting is a desired member who is not enrolled in the course yet: not
// sent (Moodle refuses group members who are not enrolled), reported, and
// added by the first sync after the enrolment arrives.
type Waiting struct {
	Group Ref
	User  Member
}

// Conflict is a desired group or grouping MIM cannot make because a group
// or grouping it does not own (a teacher's) holds the name, or another
// desired one of the same course does. MIM leaves it alone.
type Conflict struct {
	What     string // "group" or "grouping"
	IDNumber string // the desired one's
	Name     string
	HeldBy   Ref // the object holding the name
	Members  int // desired members not placed because of it
	Reason   string
}

// CoursePlan is the plan for one course.
type CoursePlan struct {
	CourseID       int64
	CourseIDNumber string
	Ops            []Op // in apply order
	Waiting        []Waiting
	Conflicts      []Conflict
	// Notes are changes MIM does not make: a MIM group renamed in CMIS
	// keeps its Moodle name (MIM follows groups by idnumber).
	Notes []string
	// Losses are the groups that lose members (the member budget's
	// per-group measure); Held those whose removals are held back.
	Losses []GroupLoss
	Held   []GroupLoss
}

// Count returns how many ops of kind the course plans.
func (cp *CoursePlan) Count(kind Kind) int {
	n := 0
	for _, op := range cp.Ops {
		if op.Kind == kind {
			n++
		}
	}
	return n
}

// Unreadable is a group-sync course whose state could not be read; the
// plan leaves it alone.
type Unreadable struct {
	CourseID       int64
	CourseIDNumber string
	Err            error
}

// Plan is everything a sync of one site would write, computed from the
// target and the state read from Moodle in the same run.
type Plan struct {
	Instance     string
	Prefix       string
	CourseFilter int64 // 0: every group-sync course
	Courses      []CoursePlan
	Unreadable   []Unreadable
	// OwnedGroups and OwnedGroupings count the MIM-owned objects in the
	// courses read: the base of the delete budget's share.
	OwnedGroups    int
	OwnedGroupings int
	// OwnedMembers counts the members of those groups: the base of the
	// member budget's share.
	OwnedMembers  int
	DesiredGroups int
	// Read says where the actual state came from (the night's database
	// read, the web services, or both).
	Read RunRead
}

// Count returns how many ops of kind the plan holds.
func (p *Plan) Count(kind Kind) int {
	n := 0
	for i := range p.Courses {
		n += p.Courses[i].Count(kind)
	}
	return n
}

// Counts returns the ops by kind (every kind present, zeros included).
func (p *Plan) Counts() map[Kind]int {
	out := make(map[Kind]int, len(Kinds))
	for _, k := range Kinds {
		out[k] = 0
	}
	for i := range p.Courses {
		for _, op := range p.Courses[i].Ops {
			out[op.Kind]++
		}
	}
	return out
}

// Writes counts every planned write.
func (p *Plan) Writes() int {
	n := 0
	for i := range p.Courses {
		n += len(p.Courses[i].Ops)
	}
	return n
}

// Waiting counts the desired members not enrolled yet.
func (p *Plan) Waiting() int {
	n := 0
	for i := range p.Courses {
		n += len(p.Courses[i].Waiting)
	}
	return n
}

// Conflicts counts the desired groups and groupings MIM cannot make.
func (p *Plan) Conflicts() int {
	n := 0
	for i := range p.Courses {
		n += len(p.Courses[i].Conflicts)
	}
	return n
}

// Ops returns every op of the plan, course by course.
func (p *Plan) Ops() []Op {
	var out []Op
	for i := range p.Courses {
		out = append(out, p.Courses[i].Ops...)
	}
	return out
}

// Functions lists the web-service functions applying the plan calls.
func (p *Plan) Functions() []string {
	fn := map[Kind]string{
		CreateGroup: "core_group_create_groups", CreateGrouping: "core_group_create_groupings",
		Assign: "core_group_assign_grouping", AddMember: "core_group_add_group_members",
		RemoveMember: "core_group_delete_group_members", Unassign: "core_group_unassign_grouping",
		DeleteGrouping: "core_group_delete_groupings", DeleteGroup: "core_group_delete_groups",
	}
	var out []string
	for _, k := range Kinds {
		if p.Count(k) > 0 {
			out = append(out, fn[k])
		}
	}
	return out
}

// MakePlan compares the target with the state read from Moodle. It is
// pure: the same inputs give the same plan. MIM touches only groups and
// groupings whose idnumber starts with prefix, and only in the target's
// courses:
//
//   - a desired group missing from Moodle is created, unless a group MIM
//     does not own holds its name (a Conflict; Moodle would refuse it too);
//   - its grouping likewise, and the group is assigned to it;
//   - desired members not in the group are added if enrolled, else
//     reported as Waiting; members MIM's group should not have are removed;
//   - a MIM group in a MIM grouping it no longer belongs to is unassigned
//     (other groups in MIM groupings, and MIM groups in other groupings,
//     are left alone);
//   - MIM groups and groupings no longer desired are deleted.
func MakePlan(t *Target, a *Actual, prefix string) *Plan {
	p := &Plan{Instance: t.Instance, Prefix: prefix}
	for _, ct := range t.Courses {
		p.DesiredGroups += len(ct.Groups)
		st := a.Courses[ct.CourseID]
		if st == nil {
			err := a.Unreadable[ct.CourseID]
			if err == nil {
				err = fmt.Errorf("course %d was not read", ct.CourseID)
			}
			p.Unreadable = append(p.Unreadable, Unreadable{CourseID: ct.CourseID, CourseIDNumber: ct.IDNumber, Err: err})
			continue
		}
		cp, ownedG, ownedGG := planCourse(&ct, st, prefix)
		p.OwnedGroups += ownedG
		p.OwnedGroupings += ownedGG
		p.OwnedMembers += ownedMembers(st, prefix)
		cp.Losses = groupLosses(cp.Ops, st)
		if len(cp.Ops)+len(cp.Waiting)+len(cp.Conflicts)+len(cp.Notes) > 0 {
			p.Courses = append(p.Courses, cp)
		}
	}
	return p
}

// planned is a desired group or grouping after conflicts are settled.
type planned struct {
	ref      Ref
	create   bool
	deferred bool
	blocker  int64
}

func planCourse(ct *CourseTarget, st *CourseState, prefix string) (cp CoursePlan, ownedGroups, ownedGroupings int) {
	cp = CoursePlan{CourseID: ct.CourseID, CourseIDNumber: ct.IDNumber}
	owns := func(idnumber string) bool { return strings.HasPrefix(idnumber, prefix) }
	op := func(o Op) Op { o.CourseID, o.CourseIDNumber = ct.CourseID, ct.IDNumber; return o }

	// Moodle keeps idnumbers unique per course; should two MIM objects
	// share one anyway, the oldest (lowest id) is MIM's and the other is
	// deleted like any MIM object not desired.
	groupByIDN := map[string]*Group{}
	groupByName := map[string]*Group{}
	for i := range st.Groups {
		g := &st.Groups[i]
		if _, dup := groupByName[g.Name]; !dup {
			groupByName[g.Name] = g
		}
		if owns(g.IDNumber) {
			ownedGroups++
			if _, dup := groupByIDN[g.IDNumber]; !dup {
				groupByIDN[g.IDNumber] = g
			}
		}
	}
	groupingByIDN := map[string]*Grouping{}
	groupingByName := map[string]*Grouping{}
	for i := range st.Groupings {
		g := &st.Groupings[i]
		if _, dup := groupingByName[g.Name]; !dup {
			groupingByName[g.Name] = g
		}
		if owns(g.IDNumber) {
			ownedGroupings++
			if _, dup := groupingByIDN[g.IDNumber]; !dup {
				groupingByIDN[g.IDNumber] = g
			}
		}
	}

	// What stays and what goes. A grouping a desired group names stays
	// even when that group is in conflict: the target still wants it.
	wantGroup := map[string]*DesiredGroup{}
	wantGrouping := map[string]string{}
	for i := range ct.Groups {
		d := &ct.Groups[i]
		wantGroup[d.IDNumber] = d
		if d.GroupingIDNumber != "" {
			if _, seen := wantGrouping[d.GroupingIDNumber]; !seen {
				wantGrouping[d.GroupingIDNumber] = d.GroupingName
			}
		}
	}
	deleteGroup := map[int64]bool{}
	for i := range st.Groups {
		g := &st.Groups[i]
		if owns(g.IDNumber) && (wantGroup[g.IDNumber] == nil || groupByIDN[g.IDNumber] != g) {
			deleteGroup[g.ID] = true
		}
	}
	deleteGrouping := map[int64]bool{}
	for i := range st.Groupings {
		g := &st.Groupings[i]
		if _, want := wantGrouping[g.IDNumber]; owns(g.IDNumber) && (!want || groupingByIDN[g.IDNumber] != g) {
			deleteGrouping[g.ID] = true
		}
	}

	// settle decides whether a desired object exists, is created (now, or
	// once the MIM object holding its name is deleted), or conflicts.
	type holder struct {
		id       int64
		idnumber string
		name     string
		deleted  bool
	}
	settle := func(what, idnumber, name string, existing *holder, byName *holder, namesPlanned map[string]string) (planned, *Conflict) {
		if existing != nil {
			if existing.name != name {
				cp.Notes = append(cp.Notes, fmt.Sprintf("%s %s is named %q in Moodle and %q in the target; MIM does not rename",
					what, idnumber, existing.name, name))
			}
			return planned{ref: Ref{ID: existing.id, IDNumber: idnumber, Name: existing.name}}, nil
		}
		if other, taken := namesPlanned[name]; taken {
			return planned{}, &Conflict{What: what, IDNumber: idnumber, Name: name, HeldBy: Ref{IDNumber: other, Name: name},
				Reason: "another " + what + " of the target has the same name"}
		}
		pl := planned{ref: Ref{IDNumber: idnumber, Name: name}, create: true}
		if byName != nil {
			switch {
			case !owns(byName.idnumber):
				return planned{}, &Conflict{What: what, IDNumber: idnumber, Name: name,
					HeldBy: Ref{ID: byName.id, IDNumber: byName.idnumber, Name: byName.name},
					Reason: "a " + what + " MIM does not own has this name"}
			case byName.deleted:
				pl.deferred, pl.blocker = true, byName.id
			default:
				return planned{}, &Conflict{What: what, IDNumber: idnumber, Name: name,
					HeldBy: Ref{ID: byName.id, IDNumber: byName.idnumber, Name: byName.name},
					Reason: "MIM's " + what + " " + byName.idnumber + " has this name"}
			}
		}
		namesPlanned[name] = idnumber
		return pl, nil
	}

	// Groupings first: a group's assignment needs its grouping settled.
	groupingNames := map[string]string{}
	groupings := map[string]planned{}
	groupingConflict := map[string]bool{}
	groupingUsed := map[string]bool{} // by a group that is not in conflict
	groupsPlanned := map[string]planned{}
	groupNames := map[string]string{}
	for i := range ct.Groups {
		d := &ct.Groups[i]
		if why := tooLong(d); why != "" {
			cp.Conflicts = append(cp.Conflicts, Conflict{What: "group", IDNumber: d.IDNumber, Name: d.Name, Members: len(d.Members), Reason: why})
			continue
		}
		var existing, byName *holder
		if g := groupByIDN[d.IDNumber]; g != nil {
			existing = &holder{g.ID, g.IDNumber, g.Name, false}
		} else if g := groupByName[d.Name]; g != nil {
			byName = &holder{g.ID, g.IDNumber, g.Name, deleteGroup[g.ID]}
		}
		pl, conflict := settle("group", d.IDNumber, d.Name, existing, byName, groupNames)
		if conflict != nil {
			conflict.Members = len(d.Members)
			cp.Conflicts = append(cp.Conflicts, *conflict)
			continue
		}
		groupsPlanned[d.IDNumber] = pl
		if d.GroupingIDNumber != "" {
			groupingUsed[d.GroupingIDNumber] = true
		}
	}
	for _, idn := range sortedKeys(wantGrouping) {
		name := wantGrouping[idn]
		var existing, byName *holder
		if g := groupingByIDN[idn]; g != nil {
			existing = &holder{g.ID, g.IDNumber, g.Name, false}
		} else if !groupingUsed[idn] {
			continue // only conflicting groups want it: nothing to make
		} else if g := groupingByName[name]; g != nil {
			byName = &holder{g.ID, g.IDNumber, g.Name, deleteGrouping[g.ID]}
		}
		pl, conflict := settle("grouping", idn, name, existing, byName, groupingNames)
		if conflict != nil {
			cp.Conflicts = append(cp.Conflicts, *conflict)
			groupingConflict[idn] = true
			continue
		}
		groupings[idn] = pl
	}

	var creates, creatings, assigns, adds, removes, unassigns []Op
	for _, idn := range sortedKeys(groupings) {
		if pl := groupings[idn]; pl.create {
			creatings = append(creatings, op(Op{Kind: CreateGrouping, Grouping: pl.ref, Deferred: pl.deferred, Blocker: pl.blocker}))
		}
	}
	groupingOf := map[int64]string{} // existing MIM group id -> the grouping idnumber it should be in
	for i := range ct.Groups {
		d := &ct.Groups[i]
		pl, ok := groupsPlanned[d.IDNumber]
		if !ok {
			continue
		}
		if pl.create {
			creates = append(creates, op(Op{Kind: CreateGroup, Group: pl.ref, Deferred: pl.deferred, Blocker: pl.blocker}))
		} else {
			groupingOf[pl.ref.ID] = d.GroupingIDNumber
		}
		if gpl, ok := groupings[d.GroupingIDNumber]; ok && !groupingConflict[d.GroupingIDNumber] {
			in := false
			if !pl.create && !gpl.create {
				in = slices.Contains(groupingByIDN[d.GroupingIDNumber].GroupIDs, pl.ref.ID)
			}
			if !in {
				assigns = append(assigns, op(Op{Kind: Assign, Group: pl.ref, Grouping: gpl.ref,
					Deferred: pl.deferred || gpl.deferred, Blocker: max(pl.blocker, gpl.blocker)}))
			}
		}
		var have []int64
		if !pl.create {
			have = groupByIDN[d.IDNumber].Members
		}
		want := make(map[int64]bool, len(d.Members))
		for _, m := range d.Members {
			want[m.UserID] = true
			if _, in := slices.BinarySearch(have, m.UserID); in {
				continue
			}
			if !st.Enrolled[m.UserID] {
				cp.Waiting = append(cp.Waiting, Waiting{Group: pl.ref, User: m})
				continue
			}
			adds = append(adds, op(Op{Kind: AddMember, Group: pl.ref, User: m, Deferred: pl.deferred, Blocker: pl.blocker}))
		}
		for _, uid := range have {
			if !want[uid] {
				removes = append(removes, op(Op{Kind: RemoveMember, Group: pl.ref, User: Member{UserID: uid}}))
			}
		}
	}
	// Unassign MIM groups that stay from MIM groupings that stay but are
	// no longer theirs. Groups being deleted leave their groupings anyway.
	groupByID := map[int64]*Group{}
	for i := range st.Groups {
		groupByID[st.Groups[i].ID] = &st.Groups[i]
	}
	for _, idn := range sortedKeys(groupings) {
		gpl := groupings[idn]
		if gpl.create {
			continue
		}
		for _, gid := range groupingByIDN[idn].GroupIDs {
			g := groupByID[gid]
			if g == nil || !owns(g.IDNumber) || deleteGroup[gid] {
				continue
			}
			if target, desired := groupingOf[gid]; desired && target != idn {
				unassigns = append(unassigns, op(Op{Kind: Unassign, Group: Ref{ID: g.ID, IDNumber: g.IDNumber, Name: g.Name}, Grouping: gpl.ref}))
			}
		}
	}
	var delGroupings, delGroups []Op
	for _, g := range st.Groupings {
		if deleteGrouping[g.ID] {
			delGroupings = append(delGroupings, op(Op{Kind: DeleteGrouping, Grouping: Ref{ID: g.ID, IDNumber: g.IDNumber, Name: g.Name}}))
		}
	}
	for _, g := range st.Groups {
		if deleteGroup[g.ID] {
			delGroups = append(delGroups, op(Op{Kind: DeleteGroup, Group: Ref{ID: g.ID, IDNumber: g.IDNumber, Name: g.Name}}))
		}
	}
	cp.Ops = slices.Concat(creates, creatings, assigns, adds, removes, unassigns, delGroupings, delGroups)
	return cp, ownedGroups, ownedGroupings
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// tooLong says why a desired group (and its grouping) cannot be made in
// Moodle: a name or idnumber longer than Moodle's column is refused there,
// so it is refused here, the group named, and never sent.
func tooLong(d *DesiredGroup) string {
	for _, c := range []struct {
		column, v string
		width     int
	}{
		{"groups.name", d.Name, moodle.GroupNameWidth}, {"groups.idnumber", d.IDNumber, moodle.GroupIDNumberWidth},
		{"groupings.name", d.GroupingName, moodle.GroupingNameWidth}, {"groupings.idnumber", d.GroupingIDNumber, moodle.GroupingIDNumberWidth},
	} {
		if why := moodle.TooLong(c.column, c.v, c.width); why != "" {
			return fmt.Sprintf("not sent: its %s %s", strings.TrimPrefix(strings.TrimPrefix(c.column, "groups."), "groupings."), why)
		}
	}
	return ""
}
