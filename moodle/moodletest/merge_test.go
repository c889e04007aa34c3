package moodletest

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The simulator's tool_mergeusers with MIM's gathering hands over and
// refuses exactly what the PHP gathering does, on the same cases.
func TestRunMergeListCases(t *testing.T) {
	cs, err := ReadMergeListCases(filepath.Join("..", "..", "moodle-side", "tool_mergeusers", "tests", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs.Cases {
		t.Run(c.Name, func(t *testing.T) {
			var st State
			for _, u := range cs.Users {
				if !u.Deleted { // Moodle's deleted accounts are not users any more
					st.Users = append(st.Users, User{ID: u.ID, Username: u.Username, FirstName: "F", LastName: "L"})
				}
			}
			s, err := New(st)
			if err != nil {
				t.Fatal(err)
			}
			for i, l := range c.Log {
				s.merges = append(s.merges, MergeLog{ID: int64(i + 1), FromUserID: l.From, ToUserID: l.To, Success: l.Success})
			}
			rep, err := s.RunMergeList(strings.NewReader(c.File))
			if c.Want.Error != "" {
				if err == nil || !strings.Contains(err.Error(), c.Want.Error) {
					t.Fatalf("error %v, want one saying %q", err, c.Want.Error)
				}
				if n := len(s.MergeLogs()); n != len(c.Log) {
					t.Errorf("a refused file merged something: %d log rows", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var merged [][3]int64
			for _, m := range rep.Merged {
				merged = append(merged, [3]int64{int64(m.Seq), m.From, m.To})
				if !m.Result.Success {
					t.Errorf("pair %d: %s", m.Seq, m.Result.Log)
				}
			}
			var refused [][2]any
			for _, r := range rep.Refused {
				refused = append(refused, [2]any{float64(r.Seq), r.Code})
			}
			if !slices.Equal(merged, c.Want.Merged) {
				t.Errorf("merged %v, want %v\n%s", merged, c.Want.Merged, strings.Join(rep.Log, "\n"))
			}
			if len(refused) != len(c.Want.Refused) || (len(refused) > 0 && !slices.EqualFunc(refused, c.Want.Refused, func(a, b [2]any) bool { return a == b })) {
				t.Errorf("refused %v, want %v\n%s", refused, c.Want.Refused, strings.Join(rep.Log, "\n"))
			}
		})
	}
}

// A merge as tool_mergeusers does it: enrolments, roles and groups move to
// the kept account, a course both were in keeps the removed account's
// enrolment suspended, the removed account is suspended and keeps its
// idnumber.
func TestMergeUsers(t *testing.T) {
	s, err := New(State{
		Courses:    []Course{{ID: 10, ShortName: "A", IDNumber: "A", CategoryID: 1}, {ID: 11, ShortName: "B", IDNumber: "B", CategoryID: 1}},
		Categories: []Category{{ID: 1, Name: "C"}},
		Users: []User{
			{ID: 100, Username: "uczlspw", FirstName: "S", LastName: "P", IDNumber: "21000001", Auth: "ldap", Suspended: true},
			{ID: 101, Username: "uczlspw-old", FirstName: "S", LastName: "P", IDNumber: "21000001"},
		},
		Enrolments: []Enrolment{
			{CourseID: 10, UserID: 101, RoleIDs: []int64{5}, Method: "imsenterprise"},
			{CourseID: 11, UserID: 101, RoleIDs: []int64{5}},
			{CourseID: 11, UserID: 100, RoleIDs: []int64{5}},
		},
		Groups: []Group{{ID: 7, CourseID: 10, Name: "G", Members: []int64{101}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	l := s.MergeUsers(101, 100)
	if !l.Success || l.ID != 1 {
		t.Fatalf("%+v", l)
	}
	from, _ := s.User(101)
	to, _ := s.User(100)
	if !from.Suspended || to.Suspended || from.IDNumber != "21000001" || from.Username != "uczlspw-old" {
		t.Errorf("after the merge: removed %+v, kept %+v", from, to)
	}
	byUser := func(course int64) map[int64]Enrolment {
		out := map[int64]Enrolment{}
		for _, e := range s.Enrolments(course) {
			out[e.UserID] = e
		}
		return out
	}
	a, b := byUser(10), byUser(11)
	if _, ok := a[101]; ok || a[100].Method != "imsenterprise" || !slices.Equal(a[100].RoleIDs, []int64{5}) {
		t.Errorf("course 10 (only the removed account): %+v", a)
	}
	if !b[101].Suspended || b[100].Suspended {
		t.Errorf("course 11 (both): the removed account's enrolment should be suspended: %+v", b)
	}
	if m, _ := s.GroupMembers(7); !slices.Equal(m, []int64{100}) {
		t.Errorf("group members %v", m)
	}
	// A second merge of the same pair is the plugin's business (the
	// gathering refuses it); merging a missing account fails, logged.
	if l := s.MergeUsers(999, 100); l.Success || l.ID != 2 || !strings.Contains(l.Log, "999") {
		t.Errorf("%+v", l)
	}
}
