package moodletest_test

import (
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/moodle/moodletest"
	"github.com/mimwarehouse/mim/moodle/moodletest/recorded"
)

func small() moodletest.State {
	return moodletest.State{
		SiteName:      "Test Moodle",
		Categories:    []moodletest.Category{{ID: 2, Name: "Science", Visible: true}, {ID: 3, Name: "Physics", Parent: 2, Visible: true}},
		Courses:       []moodletest.Course{{ID: 10, ShortName: "PHY1", IDNumber: "PHY1-2025", CategoryID: 3, Visible: true}, {ID: 11, ShortName: "PHY2", CategoryID: 3}},
		ProfileFields: []moodletest.ProfileField{{ShortName: "studentnumber", Name: "Student number"}},
		Users: []moodletest.User{
			{ID: 100, Username: "s1", FirstName: "Ann", LastName: "Zed", IDNumber: "1", CustomFields: map[string]string{"studentnumber": "1"}},
			{ID: 101, Username: "s2", FirstName: "Bob", LastName: "Young", IDNumber: "2"},
			{ID: 102, Username: "t1", FirstName: "Tess", LastName: "Xu", IDNumber: "E1"},
		},
		Enrolments: []moodletest.Enrolment{
			{CourseID: 10, UserID: 100, RoleIDs: []int64{5}},
			{CourseID: 10, UserID: 100, RoleIDs: []int64{5}, Method: "imsenterprise"},
			{CourseID: 10, UserID: 101, RoleIDs: []int64{5}, Suspended: true},
			{CourseID: 10, UserID: 102, RoleIDs: []int64{3}},
		},
		Groups:    []moodletest.Group{{ID: 7, CourseID: 10, Name: "G1", IDNumber: "mim:G1", Members: []int64{100, 101}}},
		Groupings: []moodletest.Grouping{{ID: 8, CourseID: 10, Name: "GG", Groups: []int64{7}}},
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	st := small()
	st.Courses = append(st.Courses, moodletest.Course{ID: 12, ShortName: "PHY1", CategoryID: 99})
	st.Users = append(st.Users, moodletest.User{ID: 100, Username: "dup"}, moodletest.User{ID: 103, Username: "Upper"})
	st.Groups[0].Members = append(st.Groups[0].Members, 102, 999)
	st.Enrolments = append(st.Enrolments, moodletest.Enrolment{CourseID: 10, UserID: 555})
	_, err := moodletest.New(st)
	if err == nil {
		t.Fatal("an inconsistent state was accepted")
	}
	for _, want := range []string{"course 12 (PHY1): category 99 does not exist", "user 100: id used twice",
		"username \"Upper\" is not lower case", "member 999 is not enrolled in course 10", "user 555 does not exist"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	site, err := moodletest.New(recorded.State())
	if err != nil {
		t.Fatal(err)
	}
	snap := site.Snapshot()
	again, err := moodletest.New(snap)
	if err != nil {
		t.Fatalf("rebuilding from a snapshot: %v", err)
	}
	if !reflect.DeepEqual(snap, again.Snapshot()) {
		t.Error("New(Snapshot()).Snapshot() differs from Snapshot()")
	}
	// The site course is added, and the state given is kept whole.
	if c, ok := site.Course(1); !ok || c.Format != "site" {
		t.Errorf("site course: %+v", c)
	}
	if len(snap.Users) != len(recorded.State().Users) || len(snap.Enrolments) != len(recorded.State().Enrolments) {
		t.Errorf("snapshot has %d users, %d enrolments", len(snap.Users), len(snap.Enrolments))
	}
}

func TestMutations(t *testing.T) {
	site, err := moodletest.New(small())
	if err != nil {
		t.Fatal(err)
	}
	id, err := site.AddUser(moodletest.User{Username: "s3", FirstName: "Cy", LastName: "W", IDNumber: "3"})
	if err != nil || id != 103 {
		t.Fatalf("add user: %d, %v", id, err)
	}
	if _, err := site.AddUser(moodletest.User{Username: "s3"}); err == nil {
		t.Error("a duplicate username was accepted")
	}
	if err := site.Enrol(moodletest.Enrolment{CourseID: 10, UserID: id, RoleIDs: []int64{5}, Method: "imsenterprise"}); err != nil {
		t.Fatal(err)
	}
	if err := site.SetSuspended(10, id, "imsenterprise", true); err != nil {
		t.Fatal(err)
	}
	if err := site.AssignRole(10, id, 4); err != nil {
		t.Fatal(err)
	}
	var got moodletest.Enrolment
	for _, e := range site.Enrolments(10) {
		if e.UserID == id {
			got = e
		}
	}
	if !got.Suspended || got.Method != "imsenterprise" || !slices.Equal(got.RoleIDs, []int64{4, 5}) {
		t.Errorf("enrolment of %d: %+v", id, got)
	}
	// Unenrolling one of two methods keeps the user enrolled and grouped;
	// the last one takes their groups with it.
	if !site.Unenrol(10, 100, "imsenterprise") {
		t.Fatal("no imsenterprise enrolment")
	}
	if m, _ := site.GroupMembers(7); !slices.Contains(m, 100) {
		t.Errorf("user 100 left group 7 while still enrolled: %v", m)
	}
	if !site.Unenrol(10, 100, "manual") || site.Unenrol(10, 100, "manual") {
		t.Fatal("unenrol manual")
	}
	if m, _ := site.GroupMembers(7); slices.Contains(m, 100) {
		t.Errorf("user 100 is still in group 7 after leaving the course: %v", m)
	}
	if c, ok := site.CourseByIDNumber("PHY1-2025"); !ok || c.ID != 10 {
		t.Errorf("course by idnumber: %+v", c)
	}
	if us := site.UsersByIDNumber("3"); len(us) != 1 || us[0].Username != "s3" {
		t.Errorf("users by idnumber: %+v", us)
	}
	if cid, err := site.AddCourse(moodletest.Course{ShortName: "NEW", CategoryID: 2}); err != nil || cid != 12 {
		t.Errorf("add course: %d, %v", cid, err)
	}
}

func TestParamValidation(t *testing.T) {
	site := moodletest.NewServer(t, small())
	for _, tc := range []struct{ query, want string }{
		// Booleans are 1 or 0; Moodle refuses "true".
		{"wsfunction=core_group_get_groupings&moodlewsrestformat=json&groupingids[0]=8&returngroups=true",
			`returngroups => Invalid parameter value detected: Invalid external api parameter: the value is \"true\", the server was expecting \"bool\" type`},
		{"wsfunction=core_group_get_groupings&moodlewsrestformat=json&groupingids=8",
			`groupingids => Invalid parameter value detected: Only arrays accepted. The bad value is: '8'`},
		{"wsfunction=core_group_add_group_members&moodlewsrestformat=json&members[0][groupid]=7",
			`members => Invalid parameter value detected: Missing required key in single structure: userid`},
		{"wsfunction=core_group_get_course_groups&moodlewsrestformat=json&courseid=010",
			`the value is \"010\"`},
		{"wsfunction=core_group_get_course_groups&moodlewsrestformat=json&courseid[0]=10",
			`Scalar type expected, array or object received.`},
	} {
		_, _, body := post(t, site, site.Token(), tc.query, true)
		if !strings.Contains(string(body), tc.want) {
			t.Errorf("%s:\n got %s\nwant %s", tc.query, body, tc.want)
		}
	}
	// Empty brackets append, as in PHP.
	_, _, body := post(t, site, site.Token(), "wsfunction=core_group_get_group_members&moodlewsrestformat=json&groupids[]=7", true)
	if string(body) != `[{"groupid":7,"userids":[101,100]}]` {
		t.Errorf("groupids[]: %s", body)
	}
}

func TestFaultScheduling(t *testing.T) {
	site := moodletest.NewServer(t, small())
	site.Inject(moodletest.Fault{Function: "core_group_get_course_groups", Skip: 2, Times: 1, Status: 500})
	var statuses []int
	for range 5 {
		status, _, _ := post(t, site, site.Token(), "wsfunction=core_group_get_course_groups&moodlewsrestformat=json&courseid=10", true)
		statuses = append(statuses, status)
	}
	if !slices.Equal(statuses, []int{200, 200, 500, 200, 200}) {
		t.Errorf("statuses: %v (the fault was for the third call)", statuses)
	}
	site.ClearFaults()
	site.SetThrottle(1, 2)
	statuses = statuses[:0]
	for range 4 {
		status, _, _ := post(t, site, site.Token(), "wsfunction=core_webservice_get_site_info&moodlewsrestformat=json", true)
		statuses = append(statuses, status)
	}
	if !slices.Equal(statuses[:2], []int{200, 200}) || !slices.Contains(statuses[2:], http.StatusTooManyRequests) {
		t.Errorf("throttled statuses: %v", statuses)
	}
}

// Enrolment time windows decide who is active, as get_enrolled_sql does.
func TestEnrolmentWindows(t *testing.T) {
	now := time.Unix(1_750_000_000, 0)
	st := small()
	st.Enrolments = append(st.Enrolments,
		moodletest.Enrolment{CourseID: 11, UserID: 100, RoleIDs: []int64{5}, TimeStart: now.Unix() + 3600},
		moodletest.Enrolment{CourseID: 11, UserID: 101, RoleIDs: []int64{5}, TimeEnd: now.Unix() - 3600},
		moodletest.Enrolment{CourseID: 11, UserID: 102, RoleIDs: []int64{5}, TimeStart: now.Unix() - 3600, TimeEnd: now.Unix() + 3600})
	site := moodletest.NewServer(t, st, moodletest.WithClock(func() time.Time { return now }))
	_, _, body := post(t, site, site.Token(),
		"wsfunction=core_enrol_get_enrolled_users&moodlewsrestformat=json&courseid=11&options[0][name]=onlyactive&options[0][value]=1&options[1][name]=userfields&options[1][value]=id", true)
	// Moodle adds fullname to whatever userfields asked for.
	if string(body) != `[{"id":102,"fullname":"Tess Xu"}]` {
		t.Errorf("active in course 11: %s", body)
	}
	_, _, body = post(t, site, site.Token(),
		"wsfunction=core_enrol_get_enrolled_users&moodlewsrestformat=json&courseid=11&options[0][name]=onlysuspended&options[0][value]=1&options[1][name]=userfields&options[1][value]=id", true)
	if string(body) != `[{"id":100,"fullname":"Ann Zed"},{"id":101,"fullname":"Bob Young"}]` {
		t.Errorf("suspended in course 11: %s", body)
	}
}

func TestListenerAndSiteURL(t *testing.T) {
	site, err := moodletest.New(small(), moodletest.WithToken("tok"))
	if err != nil {
		t.Fatal(err)
	}
	if err := site.Start(); err != nil {
		t.Fatal(err)
	}
	defer site.Close()
	if !strings.HasPrefix(site.URL(), "http://127.0.0.1:") || site.SiteURL() != site.URL() {
		t.Fatalf("url %q, siteurl %q", site.URL(), site.SiteURL())
	}
	_, _, body := post(t, site, "tok", "wsfunction=core_webservice_get_site_info&moodlewsrestformat=json", true)
	if !strings.Contains(string(body), `"siteurl":"`+strings.ReplaceAll(site.URL(), "/", `\/`)+`"`) {
		t.Errorf("site info: %.300s", body)
	}
	site.SetSiteURL("https://moodle.example.ac.uk")
	_, _, body = post(t, site, "tok", "wsfunction=core_webservice_get_site_info&moodlewsrestformat=json", true)
	if !strings.Contains(string(body), `"siteurl":"https:\/\/moodle.example.ac.uk"`) {
		t.Errorf("site info after SetSiteURL: %.300s", body)
	}
}

// Reads and writes at once: run with -race.
func TestConcurrentReadsAndWrites(t *testing.T) {
	site := moodletest.NewServer(t, recorded.State())
	done := make(chan error, 16)
	for i := range 16 {
		go func() {
			var err error
			for j := range 10 {
				var q string
				switch (i + j) % 4 {
				case 0:
					q = "wsfunction=core_group_add_group_members&moodlewsrestformat=json&members[0][groupid]=1&members[0][userid]=108"
				case 1:
					q = "wsfunction=core_group_delete_group_members&moodlewsrestformat=json&members[0][groupid]=1&members[0][userid]=108"
				case 2:
					q = "wsfunction=core_enrol_get_enrolled_users&moodlewsrestformat=json&courseid=14"
				default:
					q = "wsfunction=core_group_get_group_members&moodlewsrestformat=json&groupids[0]=1"
				}
				if status, _, body := post(t, site, site.Token(), q, true); status != 200 || strings.Contains(string(body), "exception") {
					err = fmt.Errorf("%s: %d %s", q, status, body)
				}
			}
			done <- err
		}()
	}
	for range 16 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// An enrolment through a disabled instance gives no access: a user whose
// only enrolment it is is suspended in the course; one with another,
// active enrolment is not. Snapshot keeps the disabled instance.
func TestDisabledEnrolmentMethod(t *testing.T) {
	st := small()
	st.DisabledMethods = []moodletest.CourseMethod{{CourseID: 11, Method: "self"}}
	st.Enrolments = append(st.Enrolments,
		moodletest.Enrolment{CourseID: 11, UserID: 100, RoleIDs: []int64{5}, Method: "self"},
		moodletest.Enrolment{CourseID: 11, UserID: 101, RoleIDs: []int64{5}, Method: "self"},
		moodletest.Enrolment{CourseID: 11, UserID: 101, RoleIDs: []int64{5}})
	site := moodletest.NewServer(t, st)
	_, _, body := post(t, site, site.Token(),
		"wsfunction=core_enrol_get_enrolled_users&moodlewsrestformat=json&courseid=11&options[0][name]=onlysuspended&options[0][value]=1&options[1][name]=userfields&options[1][value]=id", true)
	if string(body) != `[{"id":100,"fullname":"Ann Zed"}]` { // Moodle adds fullname to every userfields
		t.Errorf("suspended in course 11: %s", body)
	}
	if got := site.Snapshot().DisabledMethods; !slices.Equal(got, st.DisabledMethods) {
		t.Errorf("snapshot: disabled methods %v", got)
	}
	st.DisabledMethods = append(st.DisabledMethods, moodletest.CourseMethod{CourseID: 99, Method: "self"})
	if _, err := moodletest.New(st); err == nil || !strings.Contains(err.Error(), "disabled self enrolment: course 99 does not exist") {
		t.Errorf("a disabled method in a missing course: %v", err)
	}
}

// A handler mounted on the site answers its paths on the site's address;
// the web services and other paths are the site's as before.
func TestMountServesBesideTheWebServices(t *testing.T) {
	site := moodletest.NewServer(t, moodletest.State{})
	site.Mount("/mod/lti/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "platform "+r.URL.Path)
	}))
	get := func(path string) (int, string) {
		resp, err := http.Get(site.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/mod/lti/certs.php"); code != 200 || body != "platform /mod/lti/certs.php" {
		t.Errorf("mounted path: %d %q", code, body)
	}
	if code, _ := get("/course/view.php"); code != 404 {
		t.Errorf("an unmounted path: %d", code)
	}
	if code, body := get(moodletest.Endpoint + "?wsfunction=core_webservice_get_site_info&moodlewsrestformat=json"); code != 200 || !strings.Contains(body, "exception") {
		t.Errorf("the web services: %d %s", code, body)
	}
}
