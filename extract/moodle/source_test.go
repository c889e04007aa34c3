package moodle_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/extract"
	moodlex "github.com/mimwarehouse/mim/extract/moodle"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/load"
	"github.com/mimwarehouse/mim/moodle"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// Course ids of the test sites. Category FACA (2) holds DA1 (3); FACB is 4.
const (
	courseDA1  = 10 // category DA1, below FACA
	courseFACA = 11 // category FACA
	courseB1   = 12 // category FACB
	courseB2   = 13 // category FACB
)

// testState is a small university: four courses in three categories,
// enrolments with a suspended one and a teacher, groups, a grouping,
// grade items with grades, and completions.
func testState(siteName string) moodletest.State {
	st := moodletest.State{
		SiteName: siteName,
		Categories: []moodletest.Category{
			{ID: 2, Name: "Faculty A", IDNumber: "FACA", Visible: true},
			{ID: 3, Name: "Department A1", IDNumber: "DA1", Parent: 2, Visible: true},
			{ID: 4, Name: "Faculty B", IDNumber: "FACB", Visible: true},
		},
		ProfileFields: []moodletest.ProfileField{{ShortName: "studentnumber", Name: "Student number", Type: "text"}},
	}
	for _, c := range []struct{ id, cat int64 }{{courseDA1, 3}, {courseFACA, 2}, {courseB1, 4}, {courseB2, 4}} {
		st.Courses = append(st.Courses, moodletest.Course{ID: c.id, ShortName: fmt.Sprintf("C%d", c.id), FullName: fmt.Sprintf("Course %d", c.id),
			IDNumber: fmt.Sprintf("MOD%d-A7U-T1-2025", c.id), CategoryID: c.cat, Visible: true, StartDate: 1756684800})
	}
	for u := int64(100); u < 120; u++ {
		st.Users = append(st.Users, moodletest.User{ID: u, Username: fmt.Sprintf("s%d", u), FirstName: "Stu", LastName: fmt.Sprintf("Dent%d", u),
			Email: fmt.Sprintf("s%d@example.ac.uk", u), IDNumber: fmt.Sprintf("2500%04d", u), Auth: "saml2",
			CustomFields: map[string]string{"studentnumber": fmt.Sprintf("2500%04d", u)}})
	}
	st.Users = append(st.Users, moodletest.User{ID: 200, Username: "teach", FirstName: "Tea", LastName: "Cher", Email: "t@example.ac.uk", IDNumber: "TCHR1"})
	enrol := func(course int64, users []int64, role int64) {
		for _, u := range users {
			st.Enrolments = append(st.Enrolments, moodletest.Enrolment{CourseID: course, UserID: u, RoleIDs: []int64{role}, Suspended: course == courseDA1 && u == 103})
		}
	}
	enrol(courseDA1, span(100, 107), 5)
	enrol(courseDA1, []int64{200}, 3)
	enrol(courseFACA, span(100, 104), 5)
	enrol(courseB1, span(108, 115), 5)
	enrol(courseB2, span(116, 119), 5)
	enrol(courseB2, []int64{200}, 3)
	st.Groups = []moodletest.Group{
		{ID: 1, CourseID: courseDA1, Name: "G1", IDNumber: "mim:G1", Members: []int64{100, 101}},
		{ID: 2, CourseID: courseDA1, Name: "G2", Members: []int64{102}},
		{ID: 3, CourseID: courseB1, Name: "G3", Members: []int64{108}},
	}
	st.Groupings = []moodletest.Grouping{{ID: 1, CourseID: courseDA1, Name: "All", IDNumber: "mim:ALL", Groups: []int64{2, 1}}}
	st.GradeItems = []moodletest.GradeItem{
		{ID: 1, CourseID: courseDA1, ItemType: "course", GradeMax: 100},
		{ID: 2, CourseID: courseDA1, ItemName: "Essay", ItemType: "manual", IDNumber: "ESSAY", GradeMax: 100},
		{ID: 3, CourseID: courseB1, ItemType: "course", GradeMax: 100},
		{ID: 4, CourseID: courseB1, ItemName: "Quiz", ItemType: "mod", ItemModule: "quiz", GradeMax: 10},
	}
	g := 62.5
	st.Grades = []moodletest.Grade{{ItemID: 2, UserID: 100, Raw: &g, Updated: 1760000000}, {ItemID: 4, UserID: 108, Raw: &g, Updated: 1760000000}}
	p := 50.0
	st.Completions = []moodletest.Completion{
		{CourseID: courseDA1, UserID: 100, Completed: true, TimeCompleted: 1760000000, Progress: &p},
		{CourseID: courseB1, UserID: 108, Progress: &p},
	}
	return st
}

func span(from, to int64) []int64 {
	var out []int64
	for u := from; u <= to; u++ {
		out = append(out, u)
	}
	return out
}

// syncBuffer is a log destination shared by concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testSite is a simulated site and how to read it.
type testSite struct {
	sim    *moodletest.Site
	cfg    *moodlex.Site
	token  string
	fault  *courseFault // nil: no client-side fault
	logger *slog.Logger
}

func newTestSite(t *testing.T, name string, st moodletest.State, logs io.Writer) *testSite {
	t.Helper()
	token := "tok" + strings.Repeat(name, 4) + "0123456789abcdef"
	sim := moodletest.NewServer(t, st, moodletest.WithToken(token))
	return &testSite{sim: sim, token: token, logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		cfg: &moodlex.Site{Name: name, URL: sim.URL(), Environment: "test", Concurrency: 3, PageSize: 3,
			Entities: append([]string(nil), moodlex.DefaultEntityNames...)}}
}

// source builds the site's extractor over a fresh client.
func (s *testSite) source(t *testing.T, db *pgxpool.Pool, opts extract.Options) *moodlex.Source {
	t.Helper()
	copts := []moodle.Option{moodle.WithRate(0), moodle.WithConcurrency(s.cfg.Concurrency), moodle.WithRetries(1),
		moodle.WithBackoff(time.Millisecond, 5*time.Millisecond), moodle.WithLogger(s.logger)}
	if s.fault != nil {
		copts = append(copts, moodle.WithTransport(s.fault))
	}
	c, err := moodle.New(s.cfg.Name, s.cfg.URL, s.token, copts...)
	if err != nil {
		t.Fatal(err)
	}
	var o []moodlex.Option
	if db != nil {
		o = append(o, moodlex.WithWarehouse(db))
	}
	src, err := moodlex.New(c, s.cfg, opts, append(o, moodlex.WithLogger(s.logger))...)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// courseFault makes one function fail for one course, as a proxy in front
// of Moodle would (HTTP 503), whatever the order requests come in.
type courseFault struct {
	function string
	course   string
	hits     int
	mu       sync.Mutex
}

func (f *courseFault) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	vals, _ := url.ParseQuery(string(body))
	for k, v := range r.URL.Query() {
		vals[k] = append(vals[k], v...)
	}
	if vals.Get("wsfunction") == f.function && vals.Get("courseid") == f.course {
		f.mu.Lock()
		f.hits++
		f.mu.Unlock()
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable", Proto: "HTTP/1.1",
			ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{"Content-Type": {"text/html"}},
			Body: io.NopCloser(strings.NewReader("<html><body>503 Service Unavailable</body></html>")), Request: r}, nil
	}
	return http.DefaultTransport.RoundTrip(r)
}

// extractRun extracts the sources at once through the real loader, under
// one ledger run, as `mim extract` does.
func extractRun(t *testing.T, db *pgtest.DB, srcs ...extract.Source) (int64, []load.Report, error) {
	t.Helper()
	ctx := context.Background()
	run, err := ledger.Begin(ctx, db.Pool, "extract", "test", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	loader := load.New(db.Pool, run)
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	for i, s := range srcs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.Extract(ctx, loader) }()
	}
	wg.Wait()
	err = errors.Join(errs...)
	status := ledger.Succeeded
	if err != nil {
		status = ledger.Failed
	}
	if ferr := run.Finish(ctx, status, 0, err); ferr != nil {
		t.Fatal(ferr)
	}
	return run.ID, loader.Reports(), err
}

func report(t *testing.T, reports []load.Report, instance, entity string) load.Report {
	t.Helper()
	for _, r := range reports {
		if r.ID.Instance == instance && r.ID.Entity == entity {
			return r
		}
	}
	t.Fatalf("no report for %s/%s", instance, entity)
	return load.Report{}
}

func count(t *testing.T, db *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func text(t *testing.T, db *pgxpool.Pool, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := db.QueryRow(context.Background(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// live counts the current rows of one entity of one site.
func live(t *testing.T, db *pgxpool.Pool, instance, entity string) int64 {
	t.Helper()
	return count(t, db, `SELECT count(*) FROM raw.record WHERE source = 'moodle' AND instance = $1 AND entity = $2 AND deleted_run IS NULL`,
		instance, entity)
}

// versions fingerprints every raw row's physical version and run columns.
func versions(t *testing.T, db *pgxpool.Pool) string {
	t.Helper()
	return text(t, db, `SELECT coalesce(string_agg(instance || '/' || entity || '/' || key || '@' || xmin::text || ctid::text || ':' ||
		changed_run || ':' || coalesce(deleted_run::text, '-'), ',' ORDER BY instance, entity, key), '') FROM raw.record`)
}

func TestExtractTwoSitesEndToEnd(t *testing.T) {
	db := pgtest.New(t)
	logs := &syncBuffer{}
	alpha := newTestSite(t, "alpha", testState("Alpha"), logs)
	beta := newTestSite(t, "beta", testState("Beta"), logs)
	// beta is told it lives elsewhere: it is still read, with a warning.
	beta.sim.SetSiteURL("https://moodle.elsewhere.example")

	// First run: both sites at once.
	run1, reports, err := extractRun(t, db, alpha.source(t, db.Pool, extract.Options{}), beta.source(t, db.Pool, extract.Options{}))
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	want := map[string]int64{
		"site_info": 1, "categories": 3, "courses": 5, "users": 23, "profile_fields": 1,
		"enrolments": 8 + 1 + 5 + 8 + 4 + 1, "roles": 2, "groups": 3, "groupings": 1,
		"grade_items": 0, "grades": 0, "completion": 0,
	}
	for _, inst := range []string{"alpha", "beta"} {
		for ent, n := range want {
			if got := live(t, db.Pool, inst, ent); got != n {
				t.Errorf("%s/%s: %d live rows, want %d", inst, ent, got, n)
			}
		}
		for _, r := range reports {
			if r.ID.Instance == inst && r.Status != ledger.Succeeded {
				t.Errorf("%s: %s (%v)", r.ID, r.Status, r.Err)
			}
		}
	}
	// Payloads: the object as sent plus MIM's keys.
	for _, c := range []struct{ sql, want string }{
		{`SELECT payload->>'mim_suspended' || ' ' || (payload->'mim_courseid')::text || ' ' || jsonb_typeof(payload->'mim_courseid') || ' ' || scope
			FROM raw.record WHERE instance = 'alpha' AND entity = 'enrolments' AND key = '10:103'`, "true 10 number 10"},
		{`SELECT payload->>'mim_suspended' FROM raw.record WHERE instance = 'alpha' AND entity = 'enrolments' AND key = '10:100'`, "false"},
		{`SELECT count(*)::text FROM raw.record WHERE instance = 'alpha' AND entity = 'enrolments' AND (payload->>'mim_suspended')::boolean`, "1"},
		{`SELECT (payload->'roles'->0->>'shortname') || ' ' || (payload->'groups')::text FROM raw.record
			WHERE instance = 'alpha' AND entity = 'enrolments' AND key = '10:100'`, `student [{"id": 1, "name": "G1", "description": "", "descriptionformat": 0}]`},
		{`SELECT (payload->'mim_groupids')::text || ' ' || scope FROM raw.record WHERE instance = 'alpha' AND entity = 'groupings' AND key = '1'`, "[1, 2] 10"},
		{`SELECT string_agg(payload->>'shortname', ',' ORDER BY key) FROM raw.record WHERE instance = 'alpha' AND entity = 'roles'`, "editingteacher,student"},
		{`SELECT payload::text FROM raw.record WHERE instance = 'alpha' AND entity = 'profile_fields'`,
			`{"name": "Student number", "type": "text", "shortname": "studentnumber"}`},
		{`SELECT scope FROM raw.record WHERE instance = 'beta' AND entity = 'groups' AND key = '3'`, "12"},
		{`SELECT payload->>'siteurl' FROM raw.record WHERE instance = 'beta' AND entity = 'site_info'`, "https://moodle.elsewhere.example"},
		{`SELECT string_agg(instance || ' ' || siteurl || ' ' || sitename || ' ' || last_run_id || ' ' || cardinality(missing_functions), ', ' ORDER BY instance)
			FROM ctl.moodle_site`, fmt.Sprintf("alpha %s Alpha %d 0, beta https://moodle.elsewhere.example Beta %d 0", alpha.sim.URL(), run1, run1)},
	} {
		if got := text(t, db.Pool, c.sql); got != c.want {
			t.Errorf("%s\n got %s\nwant %s", c.sql, got, c.want)
		}
	}
	if !strings.Contains(logs.String(), "another siteurl") || !strings.Contains(logs.String(), "instance=beta") {
		t.Errorf("no warning about beta's siteurl in the logs:\n%s", logs.String())
	}

	// Second run, nothing changed on either site: nothing is rewritten.
	before := versions(t, db.Pool)
	_, reports, err = extractRun(t, db, alpha.source(t, db.Pool, extract.Options{}), beta.source(t, db.Pool, extract.Options{}))
	if err != nil {
		t.Fatalf("unchanged run: %v", err)
	}
	if after := versions(t, db.Pool); after != before {
		t.Errorf("an unchanged run rewrote raw rows:\n%s\n%s", before, after)
	}
	if n := count(t, db.Pool, `SELECT count(*) FROM raw.record_history`); n != 0 {
		t.Errorf("%d history rows after an unchanged run", n)
	}
	for _, r := range reports {
		if r.Result.New+r.Result.Changed+r.Result.Deleted != 0 || r.Result.Unchanged != r.Result.In {
			t.Errorf("unchanged run: %s %+v", r.ID, r.Result)
		}
	}

	// Third run: alpha's course 12 cannot be read (every enrolment request
	// for it answers 503) after it lost every student, while course 13
	// genuinely loses a student and a teacher, and 10's suspended student
	// comes back.
	for _, u := range span(108, 115) {
		alpha.sim.Unenrol(courseB1, u, "manual")
	}
	alpha.sim.Unenrol(courseB2, 117, "manual")
	alpha.sim.Unenrol(courseB2, 200, "manual")
	if err := alpha.sim.SetSuspended(courseDA1, 103, "manual", false); err != nil {
		t.Fatal(err)
	}
	alpha.fault = &courseFault{function: "core_enrol_get_enrolled_users", course: fmt.Sprint(courseB1)}
	_, reports, err = extractRun(t, db, alpha.source(t, db.Pool, extract.Options{}), beta.source(t, db.Pool, extract.Options{}))
	if err != nil {
		t.Fatalf("a failed course must not fail the source: %v", err)
	}
	if alpha.fault.hits < 2 {
		t.Errorf("the failing course was asked %d times; the client should retry a 503", alpha.fault.hits)
	}
	enr := report(t, reports, "alpha", "enrolments")
	if enr.Status != ledger.Partial || strings.Join(enr.Result.FailedScopes, ",") != "12" || enr.Result.Deleted != 2 || enr.Result.Changed != 1 {
		t.Errorf("alpha enrolments: %s %+v", enr.Status, enr.Result)
	}
	if n := count(t, db.Pool, `SELECT count(*) FROM raw.record WHERE instance = 'alpha' AND entity = 'enrolments' AND scope = '12' AND deleted_run IS NULL`); n != 8 {
		t.Errorf("course 12 (read failed) has %d live enrolments, want all 8 kept", n)
	}
	if got := text(t, db.Pool, `SELECT string_agg(key, ',' ORDER BY key) FROM raw.record WHERE instance = 'alpha' AND deleted_run IS NOT NULL`); got != "13:117,13:200" {
		t.Errorf("deleted rows: %s, want 13:117,13:200", got)
	}
	if got := text(t, db.Pool, `SELECT payload->>'mim_suspended' FROM raw.record WHERE instance = 'alpha' AND key = '10:103' AND entity = 'enrolments'`); got != "false" {
		t.Errorf("10:103 reactivated but mim_suspended = %s", got)
	}
	// Roles are harvested from enrolments: with a course unread they may be
	// incomplete, so they are kept as they were.
	if r := report(t, reports, "alpha", "roles"); r.Status != ledger.Partial || r.Result.Deleted != 0 {
		t.Errorf("alpha roles: %s %+v", r.Status, r.Result)
	}
	if r := report(t, reports, "beta", "enrolments"); r.Status != ledger.Succeeded || r.Result.Unchanged != r.Result.In {
		t.Errorf("beta enrolments: %s %+v", r.Status, r.Result)
	}

	// The token never leaves the client: not in raw, the ledger, ctl, errors or logs.
	for _, s := range []*testSite{alpha, beta} {
		for _, q := range []string{
			`SELECT count(*) FROM raw.record WHERE payload::text LIKE '%' || $1 || '%'`,
			`SELECT count(*) FROM raw.record_history WHERE payload::text LIKE '%' || $1 || '%'`,
			`SELECT count(*) FROM ctl.run_step WHERE detail::text LIKE '%' || $1 || '%' OR coalesce(error, '') LIKE '%' || $1 || '%'`,
			`SELECT count(*) FROM ctl.run WHERE coalesce(error, '') LIKE '%' || $1 || '%'`,
			`SELECT count(*) FROM ctl.moodle_site WHERE row(moodle_site.*)::text LIKE '%' || $1 || '%'`,
		} {
			if n := count(t, db.Pool, q, s.token); n != 0 {
				t.Errorf("the token of %s is in the warehouse: %s", s.cfg.Name, q)
			}
		}
		if strings.Contains(logs.String(), s.token) {
			t.Errorf("the token of %s is in the logs", s.cfg.Name)
		}
		for _, r := range reports {
			if r.Err != nil && strings.Contains(r.Err.Error(), s.token) {
				t.Errorf("the token of %s is in an error", s.cfg.Name)
			}
		}
	}
	if n := count(t, db.Pool, `SELECT count(*) FROM ctl.run_step WHERE detail::text LIKE '%503%' AND entity = 'enrolments'`); n != 1 {
		t.Errorf("the failed course's reason is not in the step detail (%d)", n)
	}
}

func TestCourseDeletedFromMoodleClosesItsScopes(t *testing.T) {
	db := pgtest.New(t)
	st := testState("Alpha")
	site := newTestSite(t, "alpha", st, io.Discard)
	if _, _, err := extractRun(t, db, site.source(t, db.Pool, extract.Options{})); err != nil {
		t.Fatal(err)
	}
	// Moodle has no course deletion web service the simulator answers, so
	// the site is rebuilt from its content without course 13.
	snap := site.sim.Snapshot()
	keep := func(id int64) bool { return id != courseB2 }
	var cs []moodletest.Course
	for _, c := range snap.Courses {
		if keep(c.ID) {
			cs = append(cs, c)
		}
	}
	var es []moodletest.Enrolment
	for _, e := range snap.Enrolments {
		if keep(e.CourseID) {
			es = append(es, e)
		}
	}
	snap.Courses, snap.Enrolments = cs, es
	site2 := newTestSite(t, "alpha", snap, io.Discard)
	_, reports, err := extractRun(t, db, site2.source(t, db.Pool, extract.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, db.Pool, `SELECT count(*) FROM raw.record WHERE entity = 'enrolments' AND scope = '13' AND deleted_run IS NULL`); n != 0 {
		t.Errorf("course 13 is gone from Moodle but %d of its enrolments are live", n)
	}
	if r := report(t, reports, "alpha", "enrolments"); r.Result.Deleted != 5 || r.Status != ledger.Succeeded {
		t.Errorf("enrolments: %s %+v", r.Status, r.Result)
	}
	if n := live(t, db.Pool, "alpha", "enrolments"); n != 8+1+5+8 {
		t.Errorf("%d live enrolments", n)
	}
}

func TestGradesAndCompletionOnlyWhenEnabled(t *testing.T) {
	db := pgtest.New(t)
	site := newTestSite(t, "alpha", testState("Alpha"), io.Discard)
	// Off by default: never read.
	if _, _, err := extractRun(t, db, site.source(t, db.Pool, extract.Options{})); err != nil {
		t.Fatal(err)
	}
	if n := site.sim.Calls("gradereport_user_get_grade_items") + site.sim.Calls("core_enrol_get_users_courses"); n != 0 {
		t.Errorf("%d grade or completion calls with both off", n)
	}
	// Asking for them by name does not switch them on.
	c, _ := moodle.New("alpha", site.cfg.URL, site.token)
	for _, ent := range []string{"grades", "completion", "nonsense"} {
		_, err := moodlex.New(c, site.cfg, extract.Options{Entities: []string{ent}})
		var se *moodlex.SelectionError
		if !errors.As(err, &se) {
			t.Errorf("--entity %s on a site without it: %v", ent, err)
		}
	}

	// On, limited to FACA: its subcategory DA1 counts, FACB does not.
	site.cfg.Grades = moodlex.Optional{Enabled: true, Categories: []string{"FACA"}}
	site.cfg.Completion = moodlex.Optional{Enabled: true, Categories: []string{"FACA"}}
	_, reports, err := extractRun(t, db, site.source(t, db.Pool, extract.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ sql, want string }{
		// Course 11 has no item of its own: Moodle reports its course total.
		{`SELECT string_agg(key, ',' ORDER BY key) FROM raw.record WHERE entity = 'grade_items'`, "10:1,10:2,11:5"},
		// The active students of course 10 (103 is suspended) each have the two items.
		{`SELECT count(*)::text FROM raw.record WHERE entity = 'grades' AND scope = '10'`, "14"},
		{`SELECT (payload->>'graderaw') || ' ' || (payload->>'grademax') || ' ' || (payload ? 'itemname')::text FROM raw.record WHERE entity = 'grades' AND key = '10:2:100'`,
			"62.5 100 false"},
		{`SELECT (payload->>'itemname') || ' ' || (payload->>'grademax') || ' ' || (payload ? 'graderaw')::text FROM raw.record WHERE entity = 'grade_items' AND key = '10:2'`,
			"Essay 100 false"},
		// Completion: users active in 10 or 11; only those courses' entries.
		{`SELECT count(DISTINCT scope)::text || ' ' || string_agg(DISTINCT split_part(key, ':', 2), ',' ORDER BY split_part(key, ':', 2)) FROM raw.record WHERE entity = 'completion'`, "9 10,11"},
		{`SELECT (payload->>'completed') || ' ' || (payload->>'progress') FROM raw.record WHERE entity = 'completion' AND key = '100:10'`, "true 50"},
		{`SELECT count(*)::text FROM raw.record WHERE entity = 'completion' AND key LIKE '108:%'`, "0"},
	} {
		if got := text(t, db.Pool, c.sql); got != c.want {
			t.Errorf("%s\n got %s\nwant %s", c.sql, got, c.want)
		}
	}
	if n := site.sim.Calls("gradereport_user_get_grade_items"); n != 2 {
		t.Errorf("%d grade report calls, want 2 (courses 10 and 11)", n)
	}
	for _, ent := range []string{"grade_items", "grades", "completion"} {
		if r := report(t, reports, "alpha", ent); r.Status != ledger.Succeeded {
			t.Errorf("%s: %s %v", ent, r.Status, r.Err)
		}
	}

	// Moving the limit to FACB: its grades land, FACA's are marked deleted.
	site.cfg.Grades.Categories = []string{"FACB"}
	if _, _, err := extractRun(t, db, site.source(t, db.Pool, extract.Options{})); err != nil {
		t.Fatal(err)
	}
	if got := text(t, db.Pool, `SELECT string_agg(key || ':' || (deleted_run IS NULL)::text, ',' ORDER BY key) FROM raw.record WHERE entity = 'grade_items'`); got != "10:1:false,10:2:false,11:5:false,12:3:true,12:4:true,13:6:true" {
		t.Errorf("grade items after moving the limit: %s", got)
	}

	// A category idnumber the site does not have fails those entities
	// loudly and leaves their rows as they were.
	site.cfg.Grades.Categories = []string{"NOPE"}
	_, reports, err = extractRun(t, db, site.source(t, db.Pool, extract.Options{}))
	if err == nil || !strings.Contains(err.Error(), `"NOPE"`) {
		t.Errorf("unknown category: %v", err)
	}
	if r := report(t, reports, "alpha", "grade_items"); r.Status != ledger.Failed {
		t.Errorf("grade_items with an unknown category: %s", r.Status)
	}
	if n := live(t, db.Pool, "alpha", "grade_items"); n != 3 {
		t.Errorf("%d grade items live after a failed read, want 3 kept", n)
	}
	if r := report(t, reports, "alpha", "enrolments"); r.Status != ledger.Succeeded {
		t.Errorf("enrolments must not suffer from a grades setting: %s", r.Status)
	}
}

func TestEntityFilter(t *testing.T) {
	db := pgtest.New(t)
	site := newTestSite(t, "alpha", testState("Alpha"), io.Discard)
	_, reports, err := extractRun(t, db, site.source(t, db.Pool, extract.Options{Entities: []string{"groups", "users"}}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range reports {
		got = append(got, r.ID.Entity)
	}
	if strings.Join(sorted(got), ",") != "groups,users" {
		t.Errorf("entities landed: %v", got)
	}
	if n := site.sim.Calls("core_enrol_get_enrolled_users"); n != 0 {
		t.Errorf("%d enrolment calls for groups and users", n)
	}
	if n := count(t, db.Pool, `SELECT count(*) FROM raw.record`); n != 23+3 {
		t.Errorf("%d raw rows", n)
	}
	// Roles alone still read every course's enrolments, landing none.
	_, reports, err = extractRun(t, db, site.source(t, db.Pool, extract.Options{Entities: []string{"roles"}}))
	if err != nil || len(reports) != 1 || live(t, db.Pool, "alpha", "roles") != 2 || live(t, db.Pool, "alpha", "enrolments") != 0 {
		t.Errorf("roles alone: %v %d reports", err, len(reports))
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// An unenrolment between two pages of a course shifts Moodle's offsets:
// without care the user after the page boundary is skipped and then taken
// for unenrolled.
func TestEnrolmentChangeBetweenPagesSkipsNobody(t *testing.T) {
	db := pgtest.New(t)
	st := moodletest.State{SiteName: "Paging", Courses: []moodletest.Course{{ID: 10, ShortName: "C10", FullName: "C10", CategoryID: 1}}}
	for u := int64(100); u < 110; u++ {
		st.Users = append(st.Users, moodletest.User{ID: u, Username: fmt.Sprintf("u%d", u), FirstName: "A", LastName: "B", Email: "x@example.ac.uk"})
		st.Enrolments = append(st.Enrolments, moodletest.Enrolment{CourseID: 10, UserID: u, RoleIDs: []int64{5}})
	}
	st.Categories = []moodletest.Category{{ID: 1, Name: "Misc", Visible: true}}
	site := newTestSite(t, "paging", st, io.Discard)
	site.cfg.Concurrency, site.cfg.PageSize = 1, 4
	if _, _, err := extractRun(t, db, site.source(t, db.Pool, extract.Options{Entities: []string{"enrolments"}})); err != nil {
		t.Fatal(err)
	}
	// Calls to core_enrol_get_enrolled_users: 1 is the suspended list, 2
	// the first page (100-103). Before its answer reaches MIM, 101 goes.
	var mu sync.Mutex
	calls := 0
	site.sim.OnRequest(func(r moodletest.Request) {
		if r.Function != "core_enrol_get_enrolled_users" {
			return
		}
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 2 {
			site.sim.Unenrol(10, 101, "manual")
		}
	})
	_, reports, err := extractRun(t, db, site.source(t, db.Pool, extract.Options{Entities: []string{"enrolments"}}))
	if err != nil {
		t.Fatal(err)
	}
	if r := report(t, reports, "paging", "enrolments"); r.Status != ledger.Succeeded {
		t.Errorf("enrolments: %s %v", r.Status, r.Err)
	}
	// 104 sat just after the first page: it must still be live. 101 was
	// read before it left, so it goes next run.
	if got := text(t, db.Pool, `SELECT coalesce(string_agg(key, ',' ORDER BY key), '') FROM raw.record WHERE deleted_run IS NOT NULL`); got != "" {
		t.Errorf("deleted after a page shift: %s", got)
	}
	if n := live(t, db.Pool, "paging", "enrolments"); n != 10 {
		t.Errorf("%d live enrolments, want 10", n)
	}
	if _, _, err := extractRun(t, db, site.source(t, db.Pool, extract.Options{Entities: []string{"enrolments"}})); err != nil {
		t.Fatal(err)
	}
	if got := text(t, db.Pool, `SELECT coalesce(string_agg(key, ',' ORDER BY key), '') FROM raw.record WHERE deleted_run IS NOT NULL`); got != "10:101" {
		t.Errorf("deleted next run: %q, want 10:101", got)
	}
}

// A token whose service lacks a function fails the entities that need it
// at once, without calling it for every course, and the others land.
func TestMissingFunctionFailsOnlyItsEntity(t *testing.T) {
	db := pgtest.New(t)
	site := newTestSite(t, "alpha", testState("Alpha"), io.Discard)
	var fns []string
	for _, f := range moodletest.FunctionNames() {
		if f != "core_group_get_course_groups" {
			fns = append(fns, f)
		}
	}
	site.sim.AddToken(moodletest.Token{Token: "limited0123456789abcdef0123456789", Functions: fns})
	site.token = "limited0123456789abcdef0123456789"
	_, reports, err := extractRun(t, db, site.source(t, db.Pool, extract.Options{}))
	if err == nil || !strings.Contains(err.Error(), "groups: the token's service lacks core_group_get_course_groups") {
		t.Errorf("error: %v", err)
	}
	if n := site.sim.Calls("core_group_get_course_groups"); n != 0 {
		t.Errorf("%d calls of a function the service lacks", n)
	}
	for _, r := range reports {
		want := ledger.Succeeded
		if r.ID.Entity == "groups" {
			want = ledger.Failed
		}
		if r.Status != want {
			t.Errorf("%s: %s, want %s", r.ID, r.Status, want)
		}
	}
	if got := text(t, db.Pool, `SELECT array_to_string(missing_functions, ',') FROM ctl.moodle_site`); got != "core_group_get_course_groups" {
		t.Errorf("ctl.moodle_site.missing_functions = %q", got)
	}
}

// A site that goes down mid-run: after a run of failed courses the rest are
// not tried, every scope keeps its rows, and nothing is deleted.
func TestSiteDownStopsTryingAndDeletesNothing(t *testing.T) {
	db := pgtest.New(t)
	st := testState("Alpha")
	for i := int64(0); i < 60; i++ {
		st.Courses = append(st.Courses, moodletest.Course{ID: 100 + i, ShortName: fmt.Sprintf("X%d", i), FullName: "X", CategoryID: 4})
		st.Enrolments = append(st.Enrolments, moodletest.Enrolment{CourseID: 100 + i, UserID: 100, RoleIDs: []int64{5}})
	}
	site := newTestSite(t, "alpha", st, io.Discard)
	if _, _, err := extractRun(t, db, site.source(t, db.Pool, extract.Options{Entities: []string{"enrolments"}})); err != nil {
		t.Fatal(err)
	}
	liveBefore := live(t, db.Pool, "alpha", "enrolments")
	callsBefore := site.sim.Calls("core_enrol_get_enrolled_users")
	site.sim.Inject(moodletest.Fault{Function: "core_enrol_get_enrolled_users", Status: http.StatusBadGateway})
	_, reports, err := extractRun(t, db, site.source(t, db.Pool, extract.Options{Entities: []string{"enrolments"}}))
	if err != nil {
		t.Fatalf("failed courses are failed scopes, not a failed source: %v", err)
	}
	r := report(t, reports, "alpha", "enrolments")
	if r.Status != ledger.Partial || len(r.Result.FailedScopes) != 64 || r.Result.Deleted != 0 {
		t.Errorf("enrolments: %s %+v", r.Status, r.Result)
	}
	if n := live(t, db.Pool, "alpha", "enrolments"); n != liveBefore {
		t.Errorf("%d live enrolments, want all %d kept", n, liveBefore)
	}
	// Each tried course costs two requests (the client retries once); the
	// breaker stops after 25 in a row, plus those in flight.
	if n := site.sim.Calls("core_enrol_get_enrolled_users") - callsBefore; n > 2*(25+site.cfg.Concurrency+1) {
		t.Errorf("%d enrolment requests to a site that is down: the breaker did not stop", n)
	}
	if n := count(t, db.Pool, `SELECT count(*) FROM raw.scope_read WHERE entity = 'enrolments' AND error LIKE '%gave up after 25 reads in a row failed%'`); n == 0 {
		t.Error("raw.scope_read does not say why courses were not tried")
	}
}

// The payload of every entity is the object Moodle sent: check a user and
// a course against a direct call, byte for byte in canonical form.
func TestPayloadIsTheObjectAsSent(t *testing.T) {
	db := pgtest.New(t)
	site := newTestSite(t, "alpha", testState("Alpha"), io.Discard)
	if _, _, err := extractRun(t, db, site.source(t, db.Pool, extract.Options{Entities: []string{"users", "courses"}})); err != nil {
		t.Fatal(err)
	}
	c, _ := moodle.New("alpha", site.cfg.URL, site.token)
	users, _, err := c.GetUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	courses, err := c.GetCourses(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	check := func(entity string, id moodle.Int, raw json.RawMessage) {
		var h []byte
		if err := db.Pool.QueryRow(context.Background(), `SELECT hash FROM raw.record WHERE entity = $1 AND key = $2`, entity, fmt.Sprint(id)).Scan(&h); err != nil {
			t.Fatalf("%s %d: %v", entity, id, err)
		}
		sum, err := load.Hash(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(h, sum[:]) {
			t.Errorf("%s %d: the stored hash is not that of the object as sent", entity, id)
		}
	}
	for _, u := range users {
		check("users", u.ID, u.Raw)
	}
	for _, co := range courses {
		check("courses", co.ID, co.Raw)
	}
}

// A site that will not say who it is (here: a wrong token) is not read
// further: every entity fails, raw is untouched, and the error does not
// carry the token.
func TestSiteInfoFailureStopsTheSite(t *testing.T) {
	db := pgtest.New(t)
	logs := &syncBuffer{}
	site := newTestSite(t, "alpha", testState("Alpha"), logs)
	site.token = "wrongtoken0123456789abcdef012345"
	_, reports, err := extractRun(t, db, site.source(t, db.Pool, extract.Options{}))
	if err == nil || !strings.Contains(err.Error(), "asking the site who it is") || strings.Contains(err.Error(), site.token) {
		t.Fatalf("error: %v", err)
	}
	if len(reports) != len(moodlex.DefaultEntityNames) {
		t.Errorf("%d entities recorded, want every selected one as failed", len(reports))
	}
	for _, r := range reports {
		if r.Status != ledger.Failed {
			t.Errorf("%s: %s", r.ID, r.Status)
		}
	}
	if n := site.sim.Calls(""); n != 1 {
		t.Errorf("%d requests after site info failed, want only that one", n)
	}
	if n := count(t, db.Pool, `SELECT count(*) FROM raw.record`) + count(t, db.Pool, `SELECT count(*) FROM ctl.moodle_site`); n != 0 {
		t.Errorf("%d rows written", n)
	}
	if strings.Contains(logs.String(), site.token) {
		t.Error("the token is in the logs")
	}
}
