package moodletest_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/moodle/moodletest"
	"github.com/mimwarehouse/mim/moodle/moodletest/recorded"
)

// The recordings in testdata/samples are exact answers of a real Moodle 4.5.0:
// raw/ was recorded with Moodle's debugging off, errors/ off and
// errors_debug/ on, all from one Moodle 4.5 site whose content
// recorded.State mirrors.

const samples = "testdata/samples"

// post sends one request the way the recordings were made and returns
// the status, content type and body.
func post(t *testing.T, site *moodletest.Site, token, query string, form bool) (int, string, []byte) {
	t.Helper()
	body := ""
	if token != "" {
		body = "wstoken=" + url.QueryEscape(token)
	}
	for _, part := range strings.Split(query, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if body != "" {
			body += "&"
		}
		body += url.QueryEscape(k) + "=" + url.QueryEscape(v)
	}
	var resp *http.Response
	var err error
	if form {
		resp, err = http.Post(site.URL()+moodletest.Endpoint, "application/x-www-form-urlencoded", strings.NewReader(body))
	} else {
		resp, err = http.Get(site.URL() + moodletest.Endpoint + "?" + body)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// sampleRules are the values of each recording no State determines.
var sampleRules = map[string]rules{
	"core_webservice_get_site_info": {shapeOnly: set("functions")},
	"core_course_get_categories":    {values: set("coursecount", "timemodified")},
	"core_course_get_courses":       {values: set("categorysortorder", "numsections", "timecreated", "timemodified")},
	"core_course_get_courses_by_field": {values: set("courseimage", "sortorder", "timecreated", "timemodified", "cacherev"),
		shapeOnly: set("filters")},
	"core_enrol_get_enrolled_users":           {shapeOnly: set("enrolledcourses")},
	"core_enrol_get_course_enrolment_methods": {values: set("id")},
	"gradereport_user_get_grade_items": {values: set("gradeformatted", "feedback", "gradedategraded", "iteminstance",
		"categoryid")},
}

// notSimulated are recordings of functions MIM does not use.
var notSimulated = set("gradereport_user_get_grades_table")

func TestRecordedSamples(t *testing.T) {
	site := moodletest.NewServer(t, recorded.State(), moodletest.WithSiteURL(recorded.SiteURL), moodletest.WithDebug(false))
	// The recordings are replayed in order: the writes at the end create
	// group 59 and grouping 22 and refer to them, as on the recorded site.
	compared := replay(t, samples, site, func(name string) (string, rules, bool) {
		return site.Token(), sampleRules[name], notSimulated[name]
	})
	if compared < 25 {
		t.Fatalf("compared %d recordings; index.tsv lists more", compared)
	}
}

// replay posts every request of dir/index.tsv to site, in order, with the
// token and rules each recording's name gives (skipping those it says),
// and compares each answer with dir/raw/<name>.json. It returns how many
// it compared.
func replay(t *testing.T, dir string, site *moodletest.Site, each func(name string) (token string, r rules, skip bool)) int {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "index.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	compared := 0
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != 5 {
			t.Fatalf("index.tsv: %q has %d columns", sc.Text(), len(cols))
		}
		name, ctype, query := cols[0], cols[2], cols[4]
		token, r, skip := each(name)
		if skip {
			continue
		}
		want, err := os.ReadFile(filepath.Join(dir, "raw", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		status, gotType, got := post(t, site, token, query, true)
		if status != 200 || gotType != ctype {
			t.Errorf("%s: HTTP %d %s, want 200 %s", name, status, gotType, ctype)
		}
		checkBody(t, name, got, want, r)
		compared++
	}
	return compared
}

func checkBody(t *testing.T, name string, got, want []byte, r rules) {
	t.Helper()
	if bytes.HasPrefix(want, []byte("<?xml")) {
		if !bytes.Equal(got, want) {
			t.Errorf("%s: got\n%s\nwant\n%s", name, got, want)
		}
		return
	}
	wt, err := parseTree(want)
	if err != nil {
		t.Fatalf("%s: recording: %v", name, err)
	}
	gt, err := parseTree(got)
	if err != nil {
		t.Errorf("%s: answer is not JSON (%v): %.300s", name, err, got)
		return
	}
	if diffs := compare(name, gt, wt, r); len(diffs) > 0 {
		if len(diffs) > 15 {
			diffs = append(diffs[:15], "...")
		}
		t.Errorf("%s differs from the recording:\n  %s", name, strings.Join(diffs, "\n  "))
	}
	// Moodle's JSON escapes "/" and non-ASCII; a consumer that hashes raw
	// payloads sees exactly these bytes.
	if r.values == nil && r.shapeOnly == nil && r.keys == nil && !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
		t.Errorf("%s: same values but different bytes:\n got %.400s\nwant %.400s", name, got, want)
	}
}

// errorCase reproduces one recording of errors/ and errors_debug/.
type errorCase struct {
	name  string
	token string // "admin", "student", "bad" or "" (none)
	query string
	get   bool
	rules rules
	// debugQuery replaces query in the errors_debug pass, for a write
	// that must not collide with the first pass's.
	debugQuery string
}

var errorCases = []errorCase{
	{name: "invalid_token", token: "bad", query: "wsfunction=core_webservice_get_site_info&moodlewsrestformat=json"},
	{name: "missing_token", query: "wsfunction=core_webservice_get_site_info&moodlewsrestformat=json"},
	{name: "missing_wsfunction", token: "admin", query: "moodlewsrestformat=json"},
	{name: "invalid_param_type", token: "admin", query: "wsfunction=core_enrol_get_enrolled_users&moodlewsrestformat=json&courseid=abc"},
	{name: "missing_required_param", token: "admin", query: "wsfunction=core_enrol_get_enrolled_users&moodlewsrestformat=json"},
	{name: "unexpected_param", token: "admin", query: "wsfunction=core_webservice_get_site_info&moodlewsrestformat=json&foo=bar"},
	{name: "function_not_in_service", token: "admin", query: "wsfunction=core_course_delete_courses&moodlewsrestformat=json&courseids[0]=999999"},
	{name: "function_does_not_exist", token: "admin", query: "wsfunction=core_role_get_all_roles&moodlewsrestformat=json"},
	{name: "capability_error_create_users", token: "student", query: "wsfunction=core_user_create_users&moodlewsrestformat=json&users[0][username]=nocapuser&users[0][password]=Harness#123&users[0][firstname]=No&users[0][lastname]=Cap&users[0][email]=nocap@example.com"},
	{name: "context_error_get_course_groups_not_enrolled", token: "student", query: "wsfunction=core_group_get_course_groups&moodlewsrestformat=json&courseid=16"},
	{name: "context_error_enrolled_users_not_enrolled", token: "student", query: "wsfunction=core_enrol_get_enrolled_users&moodlewsrestformat=json&courseid=16"},
	{name: "capability_error_student_get_course_groups", token: "student", query: "wsfunction=core_group_get_course_groups&moodlewsrestformat=json&courseid=14"},
	{name: "capability_error_student_grades_other_user", token: "student", query: "wsfunction=gradereport_user_get_grade_items&moodlewsrestformat=json&courseid=14&userid=107"},
	{name: "capability_error_student_create_courses", token: "student", query: "wsfunction=core_course_create_courses&moodlewsrestformat=json&courses[0][fullname]=Nope&courses[0][shortname]=NOPE-1&courses[0][categoryid]=2"},
	{name: "capability_nocap_get_users_by_field", token: "student", query: "wsfunction=core_user_get_users_by_field&moodlewsrestformat=json&field=idnumber&values[0]=23100111"},
	{name: "duplicate_group_name", token: "admin", query: "wsfunction=core_group_create_groups&moodlewsrestformat=json&groups[0][courseid]=14&groups[0][name]=Tutorial A&groups[0][description]="},
	{name: "duplicate_group_idnumber", token: "admin", query: "wsfunction=core_group_create_groups&moodlewsrestformat=json&groups[0][courseid]=14&groups[0][name]=Another tutorial&groups[0][description]=&groups[0][idnumber]=MOD1234-A7U-T1-2025-TUT1"},
	{name: "duplicate_grouping_name", token: "admin", query: "wsfunction=core_group_create_groupings&moodlewsrestformat=json&groupings[0][courseid]=14&groupings[0][name]=Labs&groupings[0][description]="},
	{name: "delete_group_id_0", token: "admin", query: "wsfunction=core_group_delete_groups&moodlewsrestformat=json&groupids[0]=0"},
	{name: "delete_group_nonexistent", token: "admin", query: "wsfunction=core_group_delete_groups&moodlewsrestformat=json&groupids[0]=999999"},
	{name: "delete_grouping_id_0", token: "admin", query: "wsfunction=core_group_delete_groupings&moodlewsrestformat=json&groupingids[0]=0"},
	{name: "add_member_not_enrolled", token: "admin", query: "wsfunction=core_group_add_group_members&moodlewsrestformat=json&members[0][groupid]=1&members[0][userid]=105"},
	{name: "add_member_group_nonexistent", token: "admin", query: "wsfunction=core_group_add_group_members&moodlewsrestformat=json&members[0][groupid]=999999&members[0][userid]=107"},
	{name: "delete_member_not_in_group", token: "admin", query: "wsfunction=core_group_delete_group_members&moodlewsrestformat=json&members[0][groupid]=1&members[0][userid]=108"},
	{name: "get_group_members_nonexistent", token: "admin", query: "wsfunction=core_group_get_group_members&moodlewsrestformat=json&groupids[0]=999999"},
	{name: "course_not_found_enrolled_users", token: "admin", query: "wsfunction=core_enrol_get_enrolled_users&moodlewsrestformat=json&courseid=999999"},
	{name: "course_not_found_groups", token: "admin", query: "wsfunction=core_group_get_course_groups&moodlewsrestformat=json&courseid=999999"},
	{name: "courses_by_field_nomatch", token: "admin", query: "wsfunction=core_course_get_courses_by_field&moodlewsrestformat=json&field=idnumber&value=NOPE-404"},
	{name: "courses_by_field_badfield", token: "admin", query: "wsfunction=core_course_get_courses_by_field&moodlewsrestformat=json&field=foo&value=1"},
	{name: "users_by_field_nomatch", token: "admin", query: "wsfunction=core_user_get_users_by_field&moodlewsrestformat=json&field=idnumber&values[0]=NOPE-404"},
	{name: "users_by_field_badfield", token: "admin", query: "wsfunction=core_user_get_users_by_field&moodlewsrestformat=json&field=foo&values[0]=x"},
	// The recorded site's admin has preferences (its own); the simulator
	// has none to show.
	{name: "get_users_bad_criteria", token: "admin", query: "wsfunction=core_user_get_users&moodlewsrestformat=json&criteria[0][key]=foo&criteria[0][value]=bar",
		rules: rules{keys: set("preferences")}},
	{name: "get_users_no_match", token: "admin", query: "wsfunction=core_user_get_users&moodlewsrestformat=json&criteria[0][key]=lastname&criteria[0][value]=Nobody-Here"},
	{name: "completion_no_criteria", token: "admin", query: "wsfunction=core_completion_get_course_completion_status&moodlewsrestformat=json&courseid=23&userid=107"},
	{name: "completion_user_not_enrolled", token: "admin", query: "wsfunction=core_completion_get_course_completion_status&moodlewsrestformat=json&courseid=14&userid=2"},
	{name: "duplicate_username", token: "admin", query: "wsfunction=core_user_create_users&moodlewsrestformat=json&users[0][username]=s23100111&users[0][password]=Harness#123&users[0][firstname]=Jack&users[0][lastname]=Again&users[0][email]=jack.again@example.com"},
	{name: "create_user_bad_password", token: "admin", query: "wsfunction=core_user_create_users&moodlewsrestformat=json&users[0][username]=eltbadpw2&users[0][password]=bad&users[0][firstname]=Bad&users[0][lastname]=Pw&users[0][email]=badpw2@example.com"},
	// Run with debugging off first and on second, on one site, the user
	// gets the ids 415 and 416, as the two recordings show.
	{name: "create_user_unknown_customfield", token: "admin",
		query:      "wsfunction=core_user_create_users&moodlewsrestformat=json&users[0][username]=eltcf1795354389&users[0][password]=Harness#123&users[0][firstname]=Cf&users[0][lastname]=Unknown&users[0][email]=cf1795354389@example.com&users[0][customfields][0][type]=nosuchfield&users[0][customfields][0][value]=x",
		debugQuery: "wsfunction=core_user_create_users&moodlewsrestformat=json&users[0][username]=eltcf1795354400&users[0][password]=Harness#123&users[0][firstname]=Cf&users[0][lastname]=Unknown&users[0][email]=cf1795354400@example.com&users[0][customfields][0][type]=nosuchfield&users[0][customfields][0][value]=x"},
	{name: "duplicate_course_shortname", token: "admin", query: "wsfunction=core_course_create_courses&moodlewsrestformat=json&courses[0][fullname]=Dup&courses[0][shortname]=MOD1234-A7U-T1-2025&courses[0][categoryid]=2"},
	{name: "duplicate_course_idnumber", token: "admin", query: "wsfunction=core_course_create_courses&moodlewsrestformat=json&courses[0][fullname]=Dup&courses[0][shortname]=DUP-IDNUMBER&courses[0][categoryid]=2&courses[0][idnumber]=MOD1234-A7U-T1-2025"},
	{name: "create_course_bad_category", token: "admin", query: "wsfunction=core_course_create_courses&moodlewsrestformat=json&courses[0][fullname]=Bad&courses[0][shortname]=BAD-CAT&courses[0][categoryid]=999999"},
	{name: "enrol_course_nonexistent", token: "admin", query: "wsfunction=enrol_manual_enrol_users&moodlewsrestformat=json&enrolments[0][roleid]=5&enrolments[0][userid]=107&enrolments[0][courseid]=999999"},
	{name: "enrol_user_nonexistent", token: "admin", query: "wsfunction=enrol_manual_enrol_users&moodlewsrestformat=json&enrolments[0][roleid]=5&enrolments[0][userid]=999999&enrolments[0][courseid]=14"},
	{name: "enrol_role_not_assignable", token: "admin", query: "wsfunction=enrol_manual_enrol_users&moodlewsrestformat=json&enrolments[0][roleid]=2&enrolments[0][userid]=107&enrolments[0][courseid]=14"},
	{name: "enrol_already_enrolled", token: "admin", query: "wsfunction=enrol_manual_enrol_users&moodlewsrestformat=json&enrolments[0][roleid]=5&enrolments[0][userid]=107&enrolments[0][courseid]=14"},
	{name: "grade_items_course_nonexistent", token: "admin", query: "wsfunction=gradereport_user_get_grade_items&moodlewsrestformat=json&courseid=999999"},
	{name: "get_method_success", token: "admin", get: true, query: "wsfunction=core_course_get_courses_by_field&moodlewsrestformat=json&field=id&value=14",
		rules: sampleRules["core_course_get_courses_by_field"]},
	{name: "xml_format_error", token: "bad", query: "wsfunction=core_webservice_get_site_info"},
	{name: "xml_format_success", token: "admin", query: "wsfunction=core_group_get_course_groupings&courseid=14"},
	{name: "xml_format_null", token: "admin", query: "wsfunction=core_group_delete_groups&groupids[0]=999999"},
	{name: "batch_create_groups_one_bad", token: "admin", query: "wsfunction=core_group_create_groups&moodlewsrestformat=json&groups[0][courseid]=14&groups[0][name]=Batch new group&groups[0][description]=&groups[1][courseid]=14&groups[1][name]=Tutorial A&groups[1][description]="},
	// After the failed batch, nothing of it was applied.
	{name: "batch_probe_after", token: "admin", query: "wsfunction=core_group_get_course_groups&moodlewsrestformat=json&courseid=14"},
}

func TestRecordedErrors(t *testing.T) {
	st := recorded.State()
	// The error recordings were made before users 415 and 416 existed.
	st.Users = slices.DeleteFunc(st.Users, func(u moodletest.User) bool { return u.ID >= 415 })
	site := moodletest.NewServer(t, st, moodletest.WithSiteURL(recorded.SiteURL))
	site.AddToken(moodletest.Token{Token: "student-token", UserID: recorded.Student})
	tokens := map[string]string{"admin": site.Token(), "student": "student-token", "bad": "no-such-token"}
	entries, err := os.ReadDir(filepath.Join(samples, "errors"))
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, dir := range []string{"errors", "errors_debug"} {
		site.SetDebug(dir == "errors_debug")
		for _, c := range errorCases {
			want, err := os.ReadFile(filepath.Join(samples, dir, c.name+".body"))
			if err != nil {
				t.Fatal(err)
			}
			query := c.query
			if dir == "errors_debug" && c.debugQuery != "" {
				query = c.debugQuery
			}
			status, _, got := post(t, site, tokens[c.token], query, !c.get)
			if status != 200 {
				t.Errorf("%s/%s: HTTP %d; Moodle answers errors with 200", dir, c.name, status)
			}
			checkBody(t, dir+"/"+c.name, got, want, c.rules)
			covered[c.name] = true
		}
	}
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".body"); ok && !covered[name] {
			t.Errorf("recording errors/%s is not reproduced", e.Name())
		}
	}
}
