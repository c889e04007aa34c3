package groupsync

import (
	"fmt"
	"slices"
	"strings"
)

// planned is a desired group or grouping after conflicts are settled.
type planned struct {
	ref      Ref
	create   bool
	deferred bool
	blocker  int64
}

// holder is an object of Moodle's that a desired one is checked against:
// the one with its idnumber, or the one holding its name.
type holder struct {
	id       int64
	idnumber string
	name     string
	deleted  bool
}

// coursePlanner plans one course in named steps (see planCourse); each
// step fills the maps the next ones read.
type coursePlanner struct {
	ct     *CourseTarget
	st     *CourseState
	prefix string
	cp     CoursePlan

	// Moodle's side (indexMoodle). Moodle keeps idnumbers unique per
	// course; should two MIM objects share one anyway, the oldest (lowest
	// id) is MIM's and the other is deleted like any MIM object not desired.
	groupByIDN     map[string]*Group
	groupByName    map[string]*Group
	groupingByIDN  map[string]*Grouping
	groupingByName map[string]*Grouping
	ownedGroups    int
	ownedGroupings int

	// The target's side (indexTarget): desired groups by idnumber, desired
	// groupings' names by idnumber.
	wantGroup    map[string]*DesiredGroup
	wantGrouping map[string]string

	// What goes (markDeletions), by Moodle id.
	deleteGroup    map[int64]bool
	deleteGrouping map[int64]bool

	// What stays or is made (settleGroups, settleGroupings), by idnumber,
	// and the names already taken by a planned object.
	groups           map[string]planned
	groupings        map[string]planned
	groupNames       map[string]string
	groupingNames    map[string]string
	groupingUsed     map[string]bool // by a group that is not in conflict
	groupingConflict map[string]bool
}

// planCourse plans one course: index Moodle's groups and the target's,
// mark what MIM owns and no longer wants, settle each desired group and
// grouping (exists, created, or in conflict), then derive the writes in the
// order they are applied.
func planCourse(ct *CourseTarget, st *CourseState, prefix string) (cp CoursePlan, ownedGroups, ownedGroupings int) {
	p := &coursePlanner{ct: ct, st: st, prefix: prefix, cp: CoursePlan{CourseID: ct.CourseID, CourseIDNumber: ct.IDNumber}}
	p.indexMoodle()
	p.indexTarget()
	p.markDeletions()
	p.settleGroups()
	p.settleGroupings()
	creates, assigns, adds, removes, groupingOf := p.groupOps()
	delGroupings, delGroups := p.deleteOps()
	p.cp.Ops = slices.Concat(creates, p.createGroupingOps(), assigns, adds, removes, p.unassignOps(groupingOf), delGroupings, delGroups)
	return p.cp, p.ownedGroups, p.ownedGroupings
}

func (p *coursePlanner) owns(idnumber string) bool { return strings.HasPrefix(idnumber, p.prefix) }

// op stamps o with the course.
func (p *coursePlanner) op(o Op) Op {
	o.CourseID, o.CourseIDNumber = p.ct.CourseID, p.ct.IDNumber
	return o
}

// indexMoodle indexes the course's groups and groupings by name and, for
// the ones MIM owns, by idnumber (the oldest of a shared idnumber), and
// counts the ones MIM owns.
func (p *coursePlanner) indexMoodle() {
	p.groupByIDN, p.groupByName, p.ownedGroups = indexOwned(p.st.Groups, p.owns,
		func(g *Group) (string, string) { return g.Name, g.IDNumber })
	p.groupingByIDN, p.groupingByName, p.ownedGroupings = indexOwned(p.st.Groupings, p.owns,
		func(g *Grouping) (string, string) { return g.Name, g.IDNumber })
}

// indexOwned indexes items by name (the first of a shared name) and, for
// the ones owns accepts, by idnumber (the first of a shared idnumber), and
// counts the ones owned.
func indexOwned[T any](items []T, owns func(string) bool, keys func(*T) (name, idnumber string)) (byIDN, byName map[string]*T, owned int) {
	byIDN, byName = map[string]*T{}, map[string]*T{}
	for i := range items {
		it := &items[i]
		name, idn := keys(it)
		if _, dup := byName[name]; !dup {
			byName[name] = it
		}
		if owns(idn) {
			owned++
			if _, dup := byIDN[idn]; !dup {
				byIDN[idn] = it
			}
		}
	}
	return byIDN, byName, owned
}

// indexTarget indexes the desired groups, and the groupings they name. A
// grouping a desired group names stays even when that group is in
// conflict: the target still wants it.
func (p *coursePlanner) indexTarget() {
	p.wantGroup, p.wantGrouping = map[string]*DesiredGroup{}, map[string]string{}
	for i := range p.ct.Groups {
		d := &p.ct.Groups[i]
		p.wantGroup[d.IDNumber] = d
		if d.GroupingIDNumber != "" {
			if _, seen := p.wantGrouping[d.GroupingIDNumber]; !seen {
				p.wantGrouping[d.GroupingIDNumber] = d.GroupingName
			}
		}
	}
}

// markDeletions marks the groups and groupings MIM owns that the target no
// longer wants, or that share an older one's idnumber.
func (p *coursePlanner) markDeletions() {
	p.deleteGroup = map[int64]bool{}
	for i := range p.st.Groups {
		g := &p.st.Groups[i]
		if p.owns(g.IDNumber) && (p.wantGroup[g.IDNumber] == nil || p.groupByIDN[g.IDNumber] != g) {
			p.deleteGroup[g.ID] = true
		}
	}
	p.deleteGrouping = map[int64]bool{}
	for i := range p.st.Groupings {
		g := &p.st.Groupings[i]
		if _, want := p.wantGrouping[g.IDNumber]; p.owns(g.IDNumber) && (!want || p.groupingByIDN[g.IDNumber] != g) {
			p.deleteGrouping[g.ID] = true
		}
	}
}

// settle decides whether a desired object exists, is created (now, or
// once the MIM object holding its name is deleted), or conflicts.
func (p *coursePlanner) settle(what, idnumber, name string, existing, byName *holder, namesPlanned map[string]string) (planned, *Conflict) {
	if existing != nil {
		if existing.name != name {
			p.cp.Notes = append(p.cp.Notes, fmt.Sprintf("%s %s is named %q in Moodle and %q in the target; MIM does not rename",
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
		case !p.owns(byName.idnumber):
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

// settleGroups settles every desired group, noting which groupings the
// groups that are not in conflict need.
func (p *coursePlanner) settleGroups() {
	p.groups, p.groupNames, p.groupingUsed = map[string]planned{}, map[string]string{}, map[string]bool{}
	for i := range p.ct.Groups {
		d := &p.ct.Groups[i]
		if why := tooLong(d); why != "" {
			p.cp.Conflicts = append(p.cp.Conflicts, Conflict{What: "group", IDNumber: d.IDNumber, Name: d.Name, Members: len(d.Members), Reason: why})
			continue
		}
		var existing, byName *holder
		if g := p.groupByIDN[d.IDNumber]; g != nil {
			existing = &holder{g.ID, g.IDNumber, g.Name, false}
		} else if g := p.groupByName[d.Name]; g != nil {
			byName = &holder{g.ID, g.IDNumber, g.Name, p.deleteGroup[g.ID]}
		}
		pl, conflict := p.settle("group", d.IDNumber, d.Name, existing, byName, p.groupNames)
		if conflict != nil {
			conflict.Members = len(d.Members)
			p.cp.Conflicts = append(p.cp.Conflicts, *conflict)
			continue
		}
		p.groups[d.IDNumber] = pl
		if d.GroupingIDNumber != "" {
			p.groupingUsed[d.GroupingIDNumber] = true
		}
	}
}

// settleGroupings settles every desired grouping that exists or that a
// settled group needs.
func (p *coursePlanner) settleGroupings() {
	p.groupings, p.groupingNames, p.groupingConflict = map[string]planned{}, map[string]string{}, map[string]bool{}
	for _, idn := range sortedKeys(p.wantGrouping) {
		name := p.wantGrouping[idn]
		var existing, byName *holder
		if g := p.groupingByIDN[idn]; g != nil {
			existing = &holder{g.ID, g.IDNumber, g.Name, false}
		} else if !p.groupingUsed[idn] {
			continue // only conflicting groups want it: nothing to make
		} else if g := p.groupingByName[name]; g != nil {
			byName = &holder{g.ID, g.IDNumber, g.Name, p.deleteGrouping[g.ID]}
		}
		pl, conflict := p.settle("grouping", idn, name, existing, byName, p.groupingNames)
		if conflict != nil {
			p.cp.Conflicts = append(p.cp.Conflicts, *conflict)
			p.groupingConflict[idn] = true
			continue
		}
		p.groupings[idn] = pl
	}
}

// createGroupingOps creates the settled groupings Moodle does not have.
func (p *coursePlanner) createGroupingOps() []Op {
	var out []Op
	for _, idn := range sortedKeys(p.groupings) {
		if pl := p.groupings[idn]; pl.create {
			out = append(out, p.op(Op{Kind: CreateGrouping, Grouping: pl.ref, Deferred: pl.deferred, Blocker: pl.blocker}))
		}
	}
	return out
}

// groupOps creates the settled groups Moodle does not have, assigns them
// to their groupings, and adds and removes members (a desired member not
// enrolled is Waiting). groupingOf maps each existing MIM group to the
// grouping it should be in.
func (p *coursePlanner) groupOps() (creates, assigns, adds, removes []Op, groupingOf map[int64]string) {
	groupingOf = map[int64]string{}
	for i := range p.ct.Groups {
		d := &p.ct.Groups[i]
		pl, ok := p.groups[d.IDNumber]
		if !ok {
			continue
		}
		if pl.create {
			creates = append(creates, p.op(Op{Kind: CreateGroup, Group: pl.ref, Deferred: pl.deferred, Blocker: pl.blocker}))
		} else {
			groupingOf[pl.ref.ID] = d.GroupingIDNumber
		}
		if a, ok := p.assignOp(d, pl); ok {
			assigns = append(assigns, a)
		}
		a, r := p.memberOps(d, pl)
		adds, removes = append(adds, a...), append(removes, r...)
	}
	return creates, assigns, adds, removes, groupingOf
}

// assignOp assigns a settled group to its settled grouping unless it is
// in it already.
func (p *coursePlanner) assignOp(d *DesiredGroup, pl planned) (Op, bool) {
	gpl, ok := p.groupings[d.GroupingIDNumber]
	if !ok || p.groupingConflict[d.GroupingIDNumber] {
		return Op{}, false
	}
	if !pl.create && !gpl.create && slices.Contains(p.groupingByIDN[d.GroupingIDNumber].GroupIDs, pl.ref.ID) {
		return Op{}, false
	}
	return p.op(Op{Kind: Assign, Group: pl.ref, Grouping: gpl.ref,
		Deferred: pl.deferred || gpl.deferred, Blocker: max(pl.blocker, gpl.blocker)}), true
}

// memberOps adds the desired members a settled group lacks (those not
// enrolled wait) and removes the ones it should not have.
func (p *coursePlanner) memberOps(d *DesiredGroup, pl planned) (adds, removes []Op) {
	var have []int64
	if !pl.create {
		have = p.groupByIDN[d.IDNumber].Members
	}
	want := make(map[int64]bool, len(d.Members))
	for _, m := range d.Members {
		want[m.UserID] = true
		if _, in := slices.BinarySearch(have, m.UserID); in {
			continue
		}
		if !p.st.Enrolled[m.UserID] {
			p.cp.Waiting = append(p.cp.Waiting, Waiting{Group: pl.ref, User: m})
			continue
		}
		adds = append(adds, p.op(Op{Kind: AddMember, Group: pl.ref, User: m, Deferred: pl.deferred, Blocker: pl.blocker}))
	}
	for _, uid := range have {
		if !want[uid] {
			removes = append(removes, p.op(Op{Kind: RemoveMember, Group: pl.ref, User: Member{UserID: uid}}))
		}
	}
	return adds, removes
}

// unassignOps takes MIM groups that stay out of MIM groupings that stay
// but are no longer theirs. Groups being deleted leave their groupings
// anyway; other groups in MIM groupings are left alone.
func (p *coursePlanner) unassignOps(groupingOf map[int64]string) []Op {
	groupByID := map[int64]*Group{}
	for i := range p.st.Groups {
		groupByID[p.st.Groups[i].ID] = &p.st.Groups[i]
	}
	var out []Op
	for _, idn := range sortedKeys(p.groupings) {
		gpl := p.groupings[idn]
		if gpl.create {
			continue
		}
		for _, gid := range p.groupingByIDN[idn].GroupIDs {
			g := groupByID[gid]
			if g == nil || !p.owns(g.IDNumber) || p.deleteGroup[gid] {
				continue
			}
			if target, desired := groupingOf[gid]; desired && target != idn {
				out = append(out, p.op(Op{Kind: Unassign, Group: Ref{ID: g.ID, IDNumber: g.IDNumber, Name: g.Name}, Grouping: gpl.ref}))
			}
		}
	}
	return out
}

// deleteOps deletes the groupings and groups markDeletions marked, in
// Moodle's order.
func (p *coursePlanner) deleteOps() (groupings, groups []Op) {
	for _, g := range p.st.Groupings {
		if p.deleteGrouping[g.ID] {
			groupings = append(groupings, p.op(Op{Kind: DeleteGrouping, Grouping: Ref{ID: g.ID, IDNumber: g.IDNumber, Name: g.Name}}))
		}
	}
	for _, g := range p.st.Groups {
		if p.deleteGroup[g.ID] {
			groups = append(groups, p.op(Op{Kind: DeleteGroup, Group: Ref{ID: g.ID, IDNumber: g.IDNumber, Name: g.Name}}))
		}
	}
	return groupings, groups
}
