package groupsync

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func desired(idn, name string, members ...int64) DesiredGroup {
	d := DesiredGroup{IDNumber: idn, Name: name, GroupingIDNumber: idn, GroupingName: name}
	for _, m := range members {
		d.Members = append(d.Members, Member{UserID: m, UserIDNumber: fmt.Sprint("u", m)})
	}
	return d
}

func enrolled(ids ...int64) map[int64]bool {
	m := map[int64]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// ops renders a course plan's ops as short strings for comparison.
func ops(cp CoursePlan) []string {
	var out []string
	for _, op := range cp.Ops {
		s := string(op.Kind) + " "
		switch op.Kind {
		case CreateGroup, DeleteGroup:
			s += op.Group.IDNumber
		case CreateGrouping, DeleteGrouping:
			s += op.Grouping.IDNumber
		case Assign, Unassign:
			s += op.Group.IDNumber + ">" + op.Grouping.IDNumber
		default:
			s += fmt.Sprintf("%s/%d", op.Group.IDNumber, op.User.UserID)
		}
		if op.Deferred {
			s += fmt.Sprintf(" after %d", op.Blocker)
		}
		out = append(out, s)
	}
	return out
}

func plan1(t *testing.T, ct CourseTarget, st *CourseState) CoursePlan {
	t.Helper()
	st.CourseID = ct.CourseID
	p := MakePlan(&Target{Instance: "main", Courses: []CourseTarget{ct}}, &Actual{Courses: map[int64]*CourseState{ct.CourseID: st}}, "mim:")
	if len(p.Courses) != 1 {
		t.Fatalf("want one course plan, got %+v", p.Courses)
	}
	return p.Courses[0]
}

func same(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("ops:\n got  %q\n want %q", got, want)
	}
}

func TestPlanAFreshCourse(t *testing.T) {
	ct := CourseTarget{CourseID: 14, IDNumber: "C14", Groups: []DesiredGroup{
		desired("mim:A", "SEM1", 101, 102), desired("mim:B", "SEM2", 103, 199), {IDNumber: "mim:E", Name: "Empty"},
	}}
	cp := plan1(t, ct, &CourseState{Enrolled: enrolled(101, 102, 103)})
	same(t, ops(cp), []string{
		"create_group mim:A", "create_group mim:B", "create_group mim:E",
		"create_grouping mim:A", "create_grouping mim:B",
		"assign mim:A>mim:A", "assign mim:B>mim:B",
		"add_member mim:A/101", "add_member mim:A/102", "add_member mim:B/103",
	})
	if len(cp.Waiting) != 1 || cp.Waiting[0].User.UserID != 199 || cp.Waiting[0].Group.IDNumber != "mim:B" {
		t.Errorf("waiting: %+v", cp.Waiting)
	}
	if cp.Ops[0].CourseID != 14 || cp.Ops[0].CourseIDNumber != "C14" {
		t.Errorf("ops carry their course: %+v", cp.Ops[0])
	}
}

func TestPlanLeavesTeacherGroupsAloneAndReportsConflicts(t *testing.T) {
	ct := CourseTarget{CourseID: 14, Groups: []DesiredGroup{
		desired("mim:A", "Lab team A", 101), desired("mim:B", "SEM2", 102), desired("mim:C", "SEM2", 103),
	}}
	st := &CourseState{
		Groups: []Group{
			{ID: 7, Name: "Lab team A", Members: []int64{101, 150}},               // a teacher's, no idnumber
			{ID: 8, Name: "Tutors", IDNumber: "teacher-1", Members: []int64{150}}, // a teacher's, another idnumber
		},
		Groupings: []Grouping{{ID: 3, Name: "All labs", IDNumber: "", GroupIDs: nil}},
		Enrolled:  enrolled(101, 102, 103, 150),
	}
	cp := plan1(t, ct, st)
	same(t, ops(cp), []string{"create_group mim:B", "create_grouping mim:B", "assign mim:B>mim:B", "add_member mim:B/102"})
	if len(cp.Conflicts) != 2 {
		t.Fatalf("conflicts: %+v", cp.Conflicts)
	}
	if c := cp.Conflicts[0]; c.IDNumber != "mim:A" || c.HeldBy.ID != 7 || c.Members != 1 || !strings.Contains(c.Reason, "does not own") {
		t.Errorf("teacher conflict: %+v", c)
	}
	if c := cp.Conflicts[1]; c.IDNumber != "mim:C" || !strings.Contains(c.Reason, "same name") {
		t.Errorf("duplicate desired name: %+v", c)
	}
	for _, op := range cp.Ops {
		if op.Group.ID == 7 || op.Group.ID == 8 || op.Grouping.ID == 3 {
			t.Errorf("a teacher's object is touched: %s", op)
		}
	}
}

func TestPlanDriftStaleAndRegrouping(t *testing.T) {
	ct := CourseTarget{CourseID: 14, Groups: []DesiredGroup{
		// Kept with drift: 102 missing, 150 extra; renamed in CMIS.
		desired("mim:A", "Seminar 1", 101, 102),
		// Moves from grouping mim:A to its own grouping mim:B.
		{IDNumber: "mim:B", Name: "SEM2", GroupingIDNumber: "mim:B", GroupingName: "SEM2", Members: []Member{{UserID: 103}}},
	}}
	st := &CourseState{
		Groups: []Group{
			{ID: 1, Name: "SEM1", IDNumber: "mim:A", Members: []int64{101, 150}},
			{ID: 2, Name: "SEM2", IDNumber: "mim:B", Members: []int64{103}},
			{ID: 3, Name: "OLD1", IDNumber: "mim:OLD", Members: []int64{101}},
			{ID: 4, Name: "Mine", IDNumber: "", Members: []int64{101}},
		},
		Groupings: []Grouping{
			{ID: 11, Name: "SEM1", IDNumber: "mim:A", GroupIDs: []int64{1, 2, 4}},
			{ID: 13, Name: "OLD1", IDNumber: "mim:OLD", GroupIDs: []int64{3}},
			{ID: 14, Name: "Teacher's", IDNumber: "", GroupIDs: []int64{1}},
		},
		Enrolled: enrolled(101, 102, 103, 150),
	}
	cp := plan1(t, ct, st)
	same(t, ops(cp), []string{
		"create_grouping mim:B",
		"assign mim:B>mim:B",
		"add_member mim:A/102",
		"remove_member mim:A/150",
		"unassign mim:B>mim:A", // group 2 leaves MIM's grouping 11; teacher group 4 stays in it
		"delete_grouping mim:OLD",
		"delete_group mim:OLD",
	})
	if len(cp.Notes) != 2 || !strings.Contains(cp.Notes[0], `group mim:A is named "SEM1" in Moodle and "Seminar 1" in the target`) ||
		!strings.HasPrefix(cp.Notes[1], "grouping mim:A") {
		t.Errorf("notes: %q", cp.Notes)
	}
}

func TestPlanReusesANameFreedByADeletion(t *testing.T) {
	// CMIS replaced a group: same code, new BDO id.
	ct := CourseTarget{CourseID: 14, Groups: []DesiredGroup{desired("mim:NEW", "SEM1", 101)}}
	st := &CourseState{
		Groups:    []Group{{ID: 5, Name: "SEM1", IDNumber: "mim:OLD", Members: []int64{101}}},
		Groupings: []Grouping{{ID: 6, Name: "SEM1", IDNumber: "mim:OLD", GroupIDs: []int64{5}}},
		Enrolled:  enrolled(101),
	}
	cp := plan1(t, ct, st)
	same(t, ops(cp), []string{
		"create_group mim:NEW after 5", "create_grouping mim:NEW after 6", "assign mim:NEW>mim:NEW after 6",
		"add_member mim:NEW/101 after 5", "delete_grouping mim:OLD", "delete_group mim:OLD",
	})
}

func TestPlanOfTheTargetIsEmpty(t *testing.T) {
	ct := CourseTarget{CourseID: 14, Groups: []DesiredGroup{desired("mim:A", "SEM1", 101, 199)}}
	st := &CourseState{
		Groups:    []Group{{ID: 1, Name: "SEM1", IDNumber: "mim:A", Members: []int64{101}}},
		Groupings: []Grouping{{ID: 2, Name: "SEM1", IDNumber: "mim:A", GroupIDs: []int64{1}}},
		Enrolled:  enrolled(101),
	}
	cp := plan1(t, ct, st)
	if len(cp.Ops) != 0 || len(cp.Waiting) != 1 {
		t.Errorf("in sync but for one waiting member: %q %+v", ops(cp), cp.Waiting)
	}
}

func TestPlanLeavesUnreadableAndAbsentCoursesAlone(t *testing.T) {
	tgt := &Target{Instance: "main", Courses: []CourseTarget{
		{CourseID: 14, Groups: []DesiredGroup{desired("mim:A", "SEM1")}},
		{CourseID: 15, Groups: []DesiredGroup{desired("mim:B", "SEM1")}},
	}}
	a := &Actual{
		Courses: map[int64]*CourseState{
			15: {CourseID: 15, Enrolled: enrolled()},
			// A course not in the target, full of MIM groups: never looked at.
			99: {CourseID: 99, Groups: []Group{{ID: 9, Name: "X", IDNumber: "mim:X"}}},
		},
		Unreadable: map[int64]error{14: errors.New("course_not_found")},
	}
	p := MakePlan(tgt, a, "mim:")
	if len(p.Unreadable) != 1 || p.Unreadable[0].CourseID != 14 {
		t.Errorf("unreadable: %+v", p.Unreadable)
	}
	if p.Count(DeleteGroup) != 0 || p.Writes() != 3 || p.OwnedGroups != 0 {
		t.Errorf("plan: %d writes, %d deletes, %d owned", p.Writes(), p.Count(DeleteGroup), p.OwnedGroups)
	}
	if got := p.Functions(); !slices.Equal(got, []string{"core_group_create_groups", "core_group_create_groupings", "core_group_assign_grouping"}) {
		t.Errorf("functions: %v", got)
	}
}

// A desired group whose name or idnumber is longer than Moodle's column is
// refused by name and never sent; the course's other groups are planned.
func TestPlanRefusesNamesLongerThanMoodlesColumns(t *testing.T) {
	ct := CourseTarget{CourseID: 14, IDNumber: "C14", Groups: []DesiredGroup{
		desired("mim:A", strings.Repeat("Seminar ", 32), 101), desired("mim:B", "SEM2", 102),
		desired("mim:"+strings.Repeat("9", 97), "SEM3", 103),
	}}
	cp := plan1(t, ct, &CourseState{Enrolled: enrolled(101, 102, 103)})
	same(t, ops(cp), []string{"create_group mim:B", "create_grouping mim:B", "assign mim:B>mim:B", "add_member mim:B/102"})
	if len(cp.Conflicts) != 2 || !strings.Contains(cp.Conflicts[0].Reason, "name is 256 characters, longer than Moodle's groups.name (254)") ||
		!strings.Contains(cp.Conflicts[1].Reason, "idnumber is 101 characters, longer than Moodle's groups.idnumber (100)") {
		t.Errorf("conflicts: %+v", cp.Conflicts)
	}
}
