package moodle_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/internal/observe"
	"github.com/mimwarehouse/mim/moodle"
	"github.com/mimwarehouse/mim/moodle/moodletest"
	"github.com/mimwarehouse/mim/moodle/moodletest/recorded"
)

// The metrics MIM exposes take the client's observations as they are.
var _ moodle.Observer = (*observe.Metrics)(nil)

// newSite serves the recorded site and returns a client for it with quick
// retries, so that tests of failures stay short.
func newSite(t *testing.T, opts ...moodletest.Option) (*moodletest.Site, *moodle.Client) {
	t.Helper()
	site := moodletest.NewServer(t, recorded.State(), opts...)
	return site, newClient(t, site, site.Token())
}

func newClient(t *testing.T, site *moodletest.Site, token string, opts ...moodle.Option) *moodle.Client {
	t.Helper()
	base := []moodle.Option{moodle.WithRate(0), moodle.WithBackoff(time.Millisecond, 5*time.Millisecond),
		moodle.WithTimeout(5 * time.Second)}
	c, err := moodle.New("test", site.URL(), token, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ids[T any](xs []T, id func(T) moodle.Int) []int64 {
	out := make([]int64, len(xs))
	for i, x := range xs {
		out[i] = int64(id(x))
	}
	return out
}

func TestReads(t *testing.T) {
	ctx := context.Background()
	site, c := newSite(t)

	info, err := c.SiteInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.SiteName != "ELT Harness Moodle" || info.Release != moodletest.DefaultRelease || info.SiteURL != site.URL() ||
		!info.Has("core_group_create_groups") || len(info.Missing(moodle.ReadFunctions...)) != 0 || c.Site() != info {
		t.Errorf("site info: %+v", info)
	}
	if !json.Valid(info.Raw) || !strings.Contains(string(info.Raw), `"functions"`) {
		t.Errorf("site info raw: %s", info.Raw)
	}

	cats, err := c.GetCategories(ctx)
	if err != nil || len(cats) != 2 || cats[1].IDNumber != "HARN-SCI" || cats[1].SortOrder != 20000 || !bool(cats[1].Visible) {
		t.Fatalf("categories: %+v, %v", cats, err)
	}
	cats, err = c.GetCategories(ctx, moodle.Criterion{Key: "idnumber", Value: "HARN-SCI"})
	if err != nil || len(cats) != 1 || cats[0].ID != 2 {
		t.Fatalf("categories by idnumber: %+v, %v", cats, err)
	}

	all, err := c.GetCourses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ids(all, func(c moodle.Course) moodle.Int { return c.ID }), 1) || len(all) != 14 {
		t.Errorf("all courses: %d, site course included? %v", len(all), ids(all, func(c moodle.Course) moodle.Int { return c.ID }))
	}
	some, err := c.GetCourses(ctx, 14, 26, 999)
	if err != nil || len(some) != 2 {
		t.Fatalf("courses 14, 26: %v, %v", some, err)
	}
	for _, cr := range some {
		if cr.ID == 26 && (bool(cr.Visible) || cr.CategoryID != 2 || cr.IDNumber != "CMP2870-C4M-T2-2025") {
			t.Errorf("course 26: %+v", cr)
		}
		// Raw is the object exactly as sent: Moodle escapes slashes.
		if cr.ID == 14 && !strings.Contains(string(cr.Raw), `<\/p>`) {
			t.Errorf("course 14 raw is not as sent: %s", cr.Raw)
		}
	}
	byField, warnings, err := c.GetCoursesByField(ctx, "idnumber", "MOD1234-A7U-T1-2025")
	if err != nil || len(byField) != 1 || byField[0].CategoryName != "Faculty of Science" || warnings == nil {
		t.Fatalf("course by idnumber: %+v %v %v", byField, warnings, err)
	}

	smiths, warnings, err := c.GetUsers(ctx, moodle.Criterion{Key: "lastname", Value: "Smith"})
	if err != nil || len(smiths) != 11 || len(warnings) != 0 {
		t.Fatalf("users named Smith: %d, %v, %v", len(smiths), warnings, err)
	}
	if sn, ok := smiths[0].Field("studentnumber"); !ok || sn != "23100666" || smiths[0].Auth != "manual" {
		t.Errorf("first Smith: %+v", smiths[0])
	}
	everyone, _, err := c.GetUsers(ctx)
	if err != nil || len(everyone) != 415 {
		t.Fatalf("every user: %d, %v", len(everyone), err)
	}
	// An unsupported criterion makes Moodle return every user with a
	// warning; the client refuses to pass that off as a match.
	_, warnings, err = c.GetUsers(ctx, moodle.Criterion{Key: "foo", Value: "bar"})
	if k, _ := moodle.KindOf(err); k != moodle.InvalidParameter || len(warnings) != 1 || warnings[0].Item != "foo" {
		t.Errorf("bad criterion: %v, %v", err, warnings)
	}
	found, err := c.GetUsersByField(ctx, "idnumber", []string{"23100111", "23101295", "E10001", "NOPE-404"})
	if err != nil || !slices.Equal(ids(found, func(u moodle.User) moodle.Int { return u.ID }), []int64{107, 139, 375}) {
		t.Fatalf("users by idnumber: %v, %v", found, err)
	}

	enrolled, err := c.GetEnrolledUsers(ctx, 14, moodle.EnrolledUsersOptions{})
	if err != nil || len(enrolled) != 9 {
		t.Fatalf("enrolled in 14: %d, %v", len(enrolled), err)
	}
	jack := enrolled[1]
	if jack.ID != 107 || len(jack.Groups) != 2 || jack.Groups[0].Name != "Lab stream 1" || len(jack.Roles) != 1 ||
		jack.Roles[0].ShortName != "student" || jack.Roles[0].Name != "" || len(jack.EnrolledCourses) != 6 {
		t.Errorf("user 107 in 14: %+v", jack)
	}
	if enrolled[0].Groups != nil {
		t.Errorf("user 4 has no groups; Moodle omits the key: %+v", enrolled[0].Groups)
	}
	if !json.Valid(jack.Raw) || !strings.Contains(string(jack.Raw), `"enrolledcourses"`) {
		t.Errorf("enrolled user raw: %s", jack.Raw)
	}
	var paged []int64
	err = c.EachEnrolledUser(ctx, 14, moodle.EnrolledUsersOptions{}, 2, func(u moodle.EnrolledUser) error {
		paged = append(paged, int64(u.ID))
		return nil
	})
	if err != nil || !slices.Equal(paged, ids(enrolled, func(u moodle.EnrolledUser) moodle.Int { return u.ID })) {
		t.Errorf("paged through 14: %v, %v", paged, err)
	}

	groups, err := c.GetCourseGroups(ctx, 14)
	if err != nil || !slices.Equal(ids(groups, func(g moodle.Group) moodle.Int { return g.ID }), []int64{56, 3, 1, 2}) ||
		groups[0].EnrolmentKey != "" || !bool(groups[0].Participation) {
		t.Fatalf("groups of 14: %+v, %v", groups, err)
	}
	groupings, err := c.GetCourseGroupings(ctx, 14)
	if err != nil || !slices.Equal(ids(groupings, func(g moodle.Grouping) moodle.Int { return g.ID }), []int64{2, 1}) {
		t.Fatalf("groupings of 14: %+v, %v", groupings, err)
	}
	full, err := c.GetGroupings(ctx, []int64{1, 2}, true)
	if err != nil || len(full) != 2 || len(full[0].Groups) != 2 || full[0].Groups[0].Name != "Tutorial A" {
		t.Fatalf("groupings with groups: %+v, %v", full, err)
	}
	members, err := c.GetGroupMembers(ctx, []int64{1, 56})
	if err != nil || len(members) != 2 || !slices.Equal(members[1].UserIDs, []moodle.Int{412}) ||
		!slices.Equal(members[0].UserIDs, []moodle.Int{127, 107}) { // by last name: Brown, Murphy
		t.Fatalf("members: %+v, %v", members, err)
	}

	grades, _, err := c.GetGradeItems(ctx, 14, 107)
	if err != nil || len(grades) != 1 || len(grades[0].GradeItems) != 4 {
		t.Fatalf("grades: %+v, %v", grades, err)
	}
	items := grades[0].GradeItems
	if items[0].GradeRaw == nil || *items[0].GradeRaw != 80.43 || items[2].GradeRaw != nil || items[2].Status != "novalue" ||
		items[3].ItemType != "course" || *items[3].GradeRaw != 120.9 || items[3].GradeMax != 150 {
		t.Errorf("grade items: %+v", items)
	}
	allGrades, _, err := c.GetGradeItems(ctx, 14, 0)
	if err != nil || len(allGrades) != 6 {
		t.Errorf("grades of every student of 14: %d, %v", len(allGrades), err)
	}
	status, _, err := c.GetCompletionStatus(ctx, 14, 107)
	if err != nil || !bool(status.Completed) || len(status.Completions) != 1 || status.Completions[0].TimeCompleted == nil {
		t.Fatalf("completion: %+v, %v", status, err)
	}
	courses, err := c.GetUserCourses(ctx, 107)
	if err != nil || len(courses) != 6 {
		t.Fatalf("courses of 107: %v, %v", courses, err)
	}
	for _, uc := range courses {
		if uc.ID == 14 && (!bool(uc.Completed) || uc.Progress != nil || uc.EnrolledUserCount != 9) {
			t.Errorf("course 14 for 107: %+v", uc)
		}
	}
	methods, err := c.GetEnrolmentMethods(ctx, 14)
	if err != nil || len(methods) != 1 || methods[0].Type != "self" || !bool(methods[0].Status) {
		t.Fatalf("enrolment methods: %+v, %v", methods, err)
	}
	// Moodle 4.5 has no core_role_get_all_roles.
	if _, err := c.GetAllRoles(ctx); !isKind(err, moodle.FunctionMissing) {
		t.Errorf("get all roles: %v", err)
	}
}

func isKind(err error, k moodle.Kind) bool {
	got, ok := moodle.KindOf(err)
	return ok && got == k
}

func TestWrites(t *testing.T) {
	ctx := context.Background()
	site, c := newSite(t)

	made, err := c.CreateGroups(ctx, []moodle.NewGroup{
		{CourseID: 14, Name: "Seminar 1", IDNumber: "mim:SEM1"},
		{CourseID: 14, Name: "Seminar 2", IDNumber: "mim:SEM2", Description: "second"},
	})
	if err != nil || made.Requests != 1 || len(made.Applied()) != 2 {
		t.Fatalf("create groups: %+v, %v", made, err)
	}
	sem1, sem2 := int64(made.Items[0].Value.ID), int64(made.Items[1].Value.ID)
	if sem1 != 59 || sem2 != 60 || made.Items[1].Value.IDNumber != "mim:SEM2" {
		t.Errorf("created groups: %+v", made.Items)
	}
	gs, err := c.CreateGroupings(ctx, []moodle.NewGrouping{{CourseID: 14, Name: "Seminars", IDNumber: "mim:SEMS"}})
	if err != nil {
		t.Fatal(err)
	}
	seminars := int64(gs.Items[0].Value.ID)
	if _, err := c.AssignGroupings(ctx, []moodle.GroupingAssignment{{seminars, sem1}, {seminars, sem2}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddGroupMembers(ctx, []moodle.Member{{sem1, 107}, {sem1, 108}, {sem2, 127}}); err != nil {
		t.Fatal(err)
	}
	// Adding again changes nothing and succeeds.
	if _, err := c.AddGroupMembers(ctx, []moodle.Member{{sem1, 107}}); err != nil {
		t.Fatal(err)
	}
	got, _ := site.GroupMembers(sem1)
	if !slices.Equal(got, []int64{107, 108}) {
		t.Errorf("members of %d: %v", sem1, got)
	}
	if _, err := c.DeleteGroupMembers(ctx, []moodle.Member{{sem1, 108}, {sem1, 999}}); !isKind(err, moodle.RecordMissing) {
		t.Errorf("removing a member with a missing user: %v", err)
	}
	if _, err := c.DeleteGroupMembers(ctx, []moodle.Member{{sem1, 108}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := site.GroupMembers(sem1); !slices.Equal(got, []int64{107}) {
		t.Errorf("members of %d after removal: %v", sem1, got)
	}
	if _, err := c.UnassignGroupings(ctx, []moodle.GroupingAssignment{{seminars, sem2}}); err != nil {
		t.Fatal(err)
	}
	full, _ := c.GetGroupings(ctx, []int64{seminars}, true)
	if len(full) != 1 || len(full[0].Groups) != 1 || int64(full[0].Groups[0].ID) != sem1 {
		t.Errorf("grouping after unassign: %+v", full)
	}
	// Deleting what does not exist is not an error in Moodle: the answer
	// is the same null.
	if _, err := c.DeleteGroups(ctx, []int64{sem2, 999999, 0}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteGroupings(ctx, []int64{seminars, 0}); err != nil {
		t.Fatal(err)
	}
	st := site.Snapshot()
	for _, g := range st.Groups {
		if int64(g.ID) == sem2 {
			t.Errorf("group %d still exists", sem2)
		}
	}
	for _, g := range st.Groupings {
		if g.ID == seminars {
			t.Errorf("grouping %d still exists", seminars)
		}
	}

	users, err := c.CreateUsers(ctx, []moodle.NewUser{{Username: "new.student", Password: "Harness#123", FirstName: "New",
		LastName: "Student", Email: "new@example.edu", IDNumber: "29990099", CustomFields: map[string]string{"studentnumber": "29990099"}}})
	if err != nil || users.Items[0].Value.ID != 417 {
		t.Fatalf("create user: %+v, %v", users, err)
	}
	courses, err := c.CreateCourses(ctx, []moodle.NewCourse{{FullName: "New course", ShortName: "NEW-1", CategoryID: 2, IDNumber: "NEW-1"}})
	if err != nil || courses.Items[0].Value.ID != 47 {
		t.Fatalf("create course: %+v, %v", courses, err)
	}
	if _, err := c.EnrolUsers(ctx, []moodle.ManualEnrolment{{CourseID: 47, UserID: 417, RoleID: 5}}); err != nil {
		t.Fatal(err)
	}
	in47, err := c.GetEnrolledUsers(ctx, 47, moodle.EnrolledUsersOptions{})
	if err != nil || len(in47) != 1 || in47[0].ID != 417 || in47[0].IDNumber != "29990099" {
		t.Fatalf("enrolled in new course: %+v, %v", in47, err)
	}
	// Suspended enrolments are listed unless onlyactive; onlysuspended
	// lists only them.
	if _, err := c.EnrolUsers(ctx, []moodle.ManualEnrolment{{CourseID: 47, UserID: 107, RoleID: 5, Suspend: true}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		opts moodle.EnrolledUsersOptions
		want []int64
	}{
		{moodle.EnrolledUsersOptions{}, []int64{107, 417}},
		{moodle.EnrolledUsersOptions{OnlyActive: true}, []int64{417}},
		{moodle.EnrolledUsersOptions{OnlySuspended: true}, []int64{107}},
	} {
		us, err := c.GetEnrolledUsers(ctx, 47, tc.opts)
		if got := ids(us, func(u moodle.EnrolledUser) moodle.Int { return u.ID }); err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("enrolled in 47 with %+v: %v, %v; want %v", tc.opts, got, err, tc.want)
		}
	}
}

func TestSiteCheck(t *testing.T) {
	ctx := context.Background()
	site, c := newSite(t, moodletest.WithSiteURL("https://moodle.example.ac.uk"))
	_, err := c.CheckSite(ctx, moodle.ReadFunctions...)
	var se *moodle.SiteError
	if !errors.As(err, &se) || se.Live != "https://moodle.example.ac.uk" || len(se.Missing) != 0 {
		t.Fatalf("a site whose siteurl is not the configured URL: %v", err)
	}
	site.SetSiteURL(site.URL() + "/")
	if _, err := c.CheckSite(ctx, moodle.ReadFunctions...); err != nil {
		t.Errorf("same site, trailing slash: %v", err)
	}
	site.AddToken(moodletest.Token{Token: "reader", Functions: moodle.ReadFunctions})
	reader := newClient(t, site, "reader")
	info, err := reader.CheckSite(ctx, append(moodle.ReadFunctions, moodle.GroupWriteFunctions...)...)
	if !errors.As(err, &se) || !slices.Equal(se.Missing, moodle.GroupWriteFunctions) || info == nil {
		t.Errorf("read-only token: %v", err)
	}
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"https://Moodle.Example.ac.uk/", "https://moodle.example.ac.uk", true},
		{"https://moodle.example.ac.uk:443", "https://moodle.example.ac.uk", true},
		{"https://moodle.example.ac.uk/moodle", "https://moodle.example.ac.uk", false},
		{"http://moodle.example.ac.uk", "https://moodle.example.ac.uk", false},
		{"https://staging-moodle.example.ac.uk", "https://moodle.example.ac.uk", false},
	} {
		if moodle.SameSite(tc.a, tc.b) != tc.same {
			t.Errorf("SameSite(%q, %q) = %v", tc.a, tc.b, !tc.same)
		}
	}
}
