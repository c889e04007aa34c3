package groupsync

import (
	"maps"
	"slices"
	"testing"
)

// markDeletions takes away exactly what MIM owns and the target no longer
// wants: a MIM group still desired stays, a second MIM group sharing its
// idnumber goes (the oldest is MIM's), a MIM group not desired goes, a
// teacher's group never does, whatever its name; groupings likewise, and a
// grouping stays while any desired group names it, even one in conflict.
func TestMarkDeletions(t *testing.T) {
	ct := &CourseTarget{CourseID: 14, IDNumber: "C14", Groups: []DesiredGroup{
		{IDNumber: "mim:LAB1", Name: "Lab 1", GroupingIDNumber: "mim:LABS", GroupingName: "Labs"},
		{IDNumber: "mim:LAB2", Name: "Lab 2", GroupingIDNumber: "mim:SEM", GroupingName: "Seminars"},
	}}
	st := &CourseState{CourseID: 14,
		Groups: []Group{
			{ID: 1, IDNumber: "mim:LAB1", Name: "Lab 1"},
			{ID: 2, IDNumber: "mim:LAB1", Name: "Lab 1 (copy)"}, // shares the idnumber: not MIM's
			{ID: 3, IDNumber: "mim:OLD", Name: "Old"},           // no longer desired
			{ID: 4, IDNumber: "", Name: "Lab 2"},                // a teacher's: never touched
			{ID: 5, IDNumber: "teacher:X", Name: "X"},           // another prefix: not MIM's
		},
		Groupings: []Grouping{
			{ID: 10, IDNumber: "mim:LABS", Name: "Labs"},
			{ID: 11, IDNumber: "mim:GONE", Name: "Gone"},
			{ID: 12, IDNumber: "", Name: "Seminars"},
		},
	}
	p := &coursePlanner{ct: ct, st: st, prefix: "mim:"}
	p.indexMoodle()
	p.indexTarget()
	p.markDeletions()
	if got := slices.Sorted(maps.Keys(p.deleteGroup)); !slices.Equal(got, []int64{2, 3}) {
		t.Errorf("groups deleted: %v, want [2 3]", got)
	}
	if got := slices.Sorted(maps.Keys(p.deleteGrouping)); !slices.Equal(got, []int64{11}) {
		t.Errorf("groupings deleted: %v, want [11]", got)
	}
	if p.ownedGroups != 3 || p.ownedGroupings != 2 {
		t.Errorf("owned: %d groups, %d groupings; want 3, 2", p.ownedGroups, p.ownedGroupings)
	}
	// Lab 2's name is held by the teacher's group: a conflict, and the
	// grouping it names is then not made.
	p.settleGroups()
	p.settleGroupings()
	if len(p.cp.Conflicts) != 1 || p.cp.Conflicts[0].IDNumber != "mim:LAB2" || p.cp.Conflicts[0].HeldBy.ID != 4 {
		t.Errorf("conflicts: %+v", p.cp.Conflicts)
	}
	if _, made := p.groupings["mim:SEM"]; made {
		t.Error("a grouping only a conflicting group wants is planned")
	}
	if pl := p.groups["mim:LAB1"]; pl.create || pl.ref.ID != 1 {
		t.Errorf("Lab 1 is the oldest MIM group of its idnumber and stays: %+v", pl)
	}
}
