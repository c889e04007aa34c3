package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/export/flatfile"
	"github.com/mimwarehouse/mim/export/ims"
	"github.com/mimwarehouse/mim/export/oneroster"
	"github.com/mimwarehouse/mim/internal/app"
	"github.com/mimwarehouse/mim/internal/demo"
	"github.com/mimwarehouse/mim/internal/ledger/ledgertest"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/statuspage/browsertest"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/load/loadtest"
)

// syncBuffer is a bytes.Buffer safe to write from one goroutine while
// another reads it.
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

// TestDemoEndToEnd is the integration test of the whole product: the
// README's first command, at scale small, on a database of its own.
func TestDemoEndToEnd(t *testing.T) {
	db := pgtest.NewEmpty(t)
	t.Setenv("MIM_DEMO_DATABASE_URL", db.DSN.Reveal())
	out := filepath.Join(t.TempDir(), "feeds")
	code, stdout, stderr := mim(t, "demo", "--scale", "small", "--out", out)
	if code != 0 {
		t.Fatalf("mim demo exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	in, err := synth.Generate(synth.Options{Scale: synth.Small, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	// What it printed: each step, the run's summary, the files, the drift
	// beside what was planted, the guard decisions, the status page.
	for _, want := range []string{
		"== 1. resetting and migrating", "== 2. writing a synthetic university", "== 3. starting the simulated Moodle sites",
		"== 4. night 1: mim run", "extract:sits started", "extract:moodle:main started",
		"---------- Execute mim demo (run 1) ----------", "---------- Finished mim demo (run 1): succeeded",
		"== 5. night 1: each site's IMS Enterprise task applies its file",
		"== 6. what was produced", "ims-main.xml", "profile-main.csv",
		"guard decisions of the last run:", "threshold main active_students: passed",
		"run 1 succeeded", "http://127.0.0.1:9464/",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the demo did not print %q", want)
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s", stdout)
	}
	checkDemoDrift(t, in, stdout)

	// What it left in the warehouse.
	ctx := context.Background()
	q := func(sql string, args ...any) int64 {
		t.Helper()
		var n int64
		if err := db.Pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	if n := ledgertest.CountRuns(t, db.Pool, `command = 'run' AND status = 'succeeded' AND exit_code = 0`); n != 1 {
		t.Errorf("%d successful runs recorded; want 1", n)
	}
	if n := ledgertest.StepText(t, db.Pool, `count(DISTINCT stage)::text`, `stage IN ('extract', 'transform', 'export', 'groups')`); n != "4" {
		t.Errorf("steps of %s stages recorded; want extract, transform, export and groups", n)
	}
	for _, s := range in.Manifest.Sites {
		if s.Archive {
			continue
		}
		if n := q(`SELECT count(*) FROM mart.exp_ims_membership WHERE instance = $1 AND status = 1`, s.Site); n != int64(s.ActiveMemberships) {
			t.Errorf("%s: %d active IMS memberships; the manifest planted %d", s.Site, n, s.ActiveMemberships)
		}
		if n := q(`SELECT count(*) FROM ctl.export_run WHERE instance = $1 AND feed = 'ims' AND status = 'published'`, s.Site); n != 1 {
			t.Errorf("%s: %d IMS files published", s.Site, n)
		}
		if s.GroupSyncCourses > 0 {
			if n := q(`SELECT count(*) FROM ctl.group_sync_apply WHERE instance = $1 AND status = 'succeeded'`, s.Site); n != 1 {
				t.Errorf("%s: group sync applied %d times", s.Site, n)
			}
		}
	}
	// The merge list keeps the account each student logs in with (LDAP, the
	// SITS username), never a hand-made or SAML one, and the simulated
	// tool_mergeusers merged it.
	if n := q(`SELECT count(*) FROM ctl.merge_sent WHERE instance = 'main'`); n == 0 || !strings.Contains(stdout,
		fmt.Sprintf("tool_mergeusers merged %d pairs of the merge list, refused 0", n)) {
		t.Errorf("%d merge pairs sent for main; the demo says:\n%s", n, stdout)
	}
	if n := q(`SELECT count(*) FROM ctl.merge_sent m
		JOIN stg.moodle_user u ON u.instance = m.instance AND u.user_id = m.to_userid
		JOIN stg.sits_student s ON s.student_code = m.student_code
		WHERE u.auth <> 'ldap' OR u.username <> lower(s.username)`); n != 0 {
		t.Errorf("%d merge pairs keep an account that is not the student's LDAP account", n)
	}
	// The IMS file on disk is a valid feed for the site.
	b, err := os.ReadFile(filepath.Join(out, "ims-main.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ims.ValidateBytes(b); err != nil {
		t.Errorf("ims-main.xml: %v", err)
	}
	// So are the OneRoster set and the flat file of the same target.
	b, err = os.ReadFile(filepath.Join(out, "oneroster-main.zip"))
	if err != nil {
		t.Fatal(err)
	}
	if sum, err := oneroster.Validate(b); err != nil || sum.Modes["enrollments"] != oneroster.Bulk || sum.Rows["enrollments"] == 0 {
		t.Errorf("oneroster-main.zip: %+v %v", sum, err)
	}
	b, err = os.ReadFile(filepath.Join(out, "flatfile", "enrolments-main.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := flatfile.Validate(bytes.NewReader(b)); err != nil || st.Adds == 0 || st.Dels != 0 {
		t.Errorf("enrolments-main.txt: %+v %v", st, err)
	}
	if !strings.Contains(stdout, "add lines, 0 del lines, checked as enrol_flatfile reads them") {
		t.Errorf("the demo does not show the flat file:\n%s", stdout)
	}
	// No token of a simulated site reaches the output.
	if m := regexp.MustCompile(`\b[0-9a-f]{32}\b`).FindString(stdout + stderr); m != "" {
		t.Errorf("the output holds something shaped like a token: %s", m)
	}

	// The demo leaves its configuration: every other command works on the
	// demo's warehouse with it, and it keeps its secrets beside it.
	cfgPath := filepath.Join(out, "mim.yaml")
	for _, want := range []string{"the demo's configuration is " + cfgPath, "--config " + cfgPath + " status",
		"--config " + cfgPath + " export --dry-run"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the demo does not say %q", want)
		}
	}
	cfgText, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`\b[0-9a-f]{32}\b|mim:mim@`).Find(cfgText); m != nil {
		t.Errorf("mim.yaml holds a secret: %s", m)
	}
	if st, err := os.Stat(filepath.Join(out, "mim.secrets")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mim.secrets: %v %v", st, err)
	}
	code, got, errOut := mim(t, "--config", cfgPath, "status")
	// The last run is the flat-file export the demo shows after the night
	// (run 2); the night itself is run 1.
	if code != 0 || !strings.Contains(got, `deployment environment "demo"`) || !strings.Contains(got, "run 2 by stage") ||
		!regexp.MustCompile(`(?m)^export\s+\d+`).MatchString(got) || !regexp.MustCompile(`(?m)^\s*1\s+run\s+succeeded`).MatchString(got) {
		t.Errorf("status with the demo's configuration: %d\n%s%s", code, got, errOut)
	}
	code, got, errOut = mim(t, "--config", cfgPath, "export", "--dry-run")
	if code != 0 || !strings.Contains(got, "DRY RUN") || !strings.Contains(got, "main/ims:") {
		t.Errorf("export --dry-run with the demo's configuration: %d\n%s%s", code, got, errOut)
	}

	// Rerunnable: a second demo on the same database starts from scratch.
	code, stdout, stderr = mim(t, "demo", "--scale", "small", "--out", out)
	if code != 0 || !strings.Contains(stdout, "run 1 succeeded") {
		t.Fatalf("the second demo: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// checkDemoDrift requires the drift the marts found, as the demo printed
// it, to be the drift the synthetic data planted.
func checkDemoDrift(t *testing.T, in *synth.Institution, stdout string) {
	t.Helper()
	for _, s := range in.Manifest.Sites {
		row := regexp.MustCompile(fmt.Sprintf(`(?m)^\s+%s\s+(\d+)\s+%d\s+(\d+)\s+%d\s+(\d+)\s+%d\s+(\d+)\s+%d\s*$`,
			s.Site, s.DriftMissing, s.DriftSuspended, s.DriftExtra, s.UnknownUserRows)).FindStringSubmatch(stdout)
		if row == nil {
			t.Errorf("no drift row for %s in:\n%s", s.Site, stdout)
			continue
		}
		if got := strings.Join(row[1:], " "); got != fmt.Sprintf("%d %d %d %d", s.DriftMissing, s.DriftSuspended, s.DriftExtra, s.UnknownUserRows) {
			t.Errorf("site %s: drift found %s, planted %d %d %d %d", s.Site, got, s.DriftMissing, s.DriftSuspended, s.DriftExtra, s.UnknownUserRows)
		}
	}
}

// The demo with every site read from (a copy of) its database: two nights,
// the second of which reads the copy taken after Moodle applied the first
// night's IMS file (no enrolment missing any more), and the sites' raw
// records say they came from the database.
func TestDemoReadsMoodleDatabases(t *testing.T) {
	db := pgtest.NewEmpty(t)
	t.Setenv("MIM_DEMO_DATABASE_URL", db.DSN.Reveal())
	code, stdout, stderr := mim(t, "demo", "--scale", "small", "--moodle-db", "--nights", "2", "--out", filepath.Join(t.TempDir(), "feeds"))
	if code != 0 {
		t.Fatalf("mim demo --moodle-db exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	in, err := synth.Generate(synth.Options{Scale: synth.Small, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"== 4. night 1: each site's tables copied", "== 4. night 2: each site's tables copied", "run 2 succeeded"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the demo did not print %q", want)
		}
	}
	main, _ := in.Manifest.Site("main")
	if main.DriftMissing == 0 {
		t.Fatal("the synthetic main site plants no missing enrolment")
	}
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^\s+main\s+0\s+%d\s+`, main.DriftMissing)).MatchString(stdout) {
		t.Errorf("after night 2, main should miss no enrolment (planted %d before night 1):\n%s", main.DriftMissing, stdout)
	}
	// Night 1's merges, done by tool_mergeusers, are seen done on night 2:
	// no pair is proposed again, and the profile CSV moves the codes off the
	// merged-away accounts.
	var sent, proposed, lists, cleared int64
	if err := db.Pool.QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM ctl.merge_sent WHERE instance = 'main'),
			(SELECT count(*) FROM mart.exp_merge_candidates WHERE instance = 'main'),
			(SELECT count(*) FROM ctl.export_run WHERE instance = 'main' AND feed = 'merge' AND status = 'published'),
			(SELECT coalesce((counts->>'codes_cleared')::bigint, 0) FROM ctl.export_run
			  WHERE instance = 'main' AND feed = 'profile_csv' ORDER BY export_id DESC LIMIT 1)`).Scan(&sent, &proposed, &lists, &cleared); err != nil {
		t.Fatal(err)
	}
	if sent == 0 || proposed != 0 || lists != 1 || cleared == 0 {
		t.Errorf("merges: %d pairs sent on night 1, %d proposed again on night 2 (%d lists published), %d codes cleared on night 2",
			sent, proposed, lists, cleared)
	}
	fromDB := loadtest.Count(t, db.Pool, `source = 'moodle' AND entity = 'site_info' AND payload->>'mim_read' = 'database'`)
	if fromDB != int64(len(in.Sites)) {
		t.Errorf("%d of %d sites were read from their database", fromDB, len(in.Sites))
	}
}

// TestDemoServes runs the demo with --serve: the status page renders in
// chromium, /metrics has the stages' metrics, /healthz answers.
func TestDemoServes(t *testing.T) {
	browser := browsertest.Chromium(t)
	db := pgtest.NewEmpty(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	var stdout syncBuffer
	e := &app.Env{Stdout: &stdout, Stderr: io.Discard}
	done := make(chan error, 1)
	go func() {
		done <- app.RunDemo(ctx, e, demo.Options{Scale: synth.Small, Nights: 1, Serve: true, Listen: "127.0.0.1:0",
			Out: t.TempDir(), Seed: 1, DSN: db.DSN.Reveal(), Ready: func(url string) { ready <- url }})
	}()
	var url string
	select {
	case url = <-ready:
	case err := <-done:
		t.Fatalf("the demo ended before serving: %v\n%s", err, stdout.String())
	case <-time.After(5 * time.Minute):
		t.Fatalf("the demo never served\n%s", stdout.String())
	}

	metrics := fetch(t, url+"metrics")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`mim_stage_seconds\{stage="transform"\} \d`),
		regexp.MustCompile(`mim_last_success_timestamp_seconds\{stage="run"\} \d`),
		regexp.MustCompile(`mim_extract_records_total\{entity="student",site="sits",source="sits"\} [1-9]`),
		regexp.MustCompile(`mim_moodle_requests_total\{function="core_enrol_get_enrolled_users",outcome="ok",site="main"\} [1-9]`),
		regexp.MustCompile(`mim_live_moodle_requests_total\{function="core_enrol_get_enrolled_users",outcome="ok",site="main"\} [1-9]`),
		regexp.MustCompile(`mim_moodle_request_seconds_bucket\{function="core_enrol_get_enrolled_users",site="main",le="60"\} [1-9]`),
		regexp.MustCompile(`mim_guard_events_total\{decision="passed",guard="threshold",site="main"\} [1-9]`),
		regexp.MustCompile(`mim_stage_runs_total\{outcome="succeeded",site="sits",stage="extract"\} [1-9]`),
		regexp.MustCompile(`mim_scopes\{entity="enrolments",site="main",source="moodle",state="complete"\} [1-9]`),
		regexp.MustCompile(`mim_ledger_up 1`),
		regexp.MustCompile(`mim_schedule_paused 0`),
	} {
		if !want.MatchString(metrics) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if h := fetch(t, url+"healthz"); !strings.Contains(h, `"status":"ok"`) || !strings.Contains(h, `"environment":"demo"`) {
		t.Errorf("/healthz: %s", h)
	}
	dom := string(browsertest.Headless(t, browser, url, "--dump-dom"))
	for _, want := range []string{`id="run-1"`, `<span class="status succeeded">succeeded</span>`, "Enrolment drift per site",
		`<table class="drift">`, "<circle", `class="stage-summary"`, "groups/moodle/main/apply"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the status page in chromium lacks %q", want)
		}
	}
	// The course staff's tool is up beside it: a student's launch from the
	// simulated Moodle ends on the read-only page.
	student := regexp.MustCompile(`as a student \(read-only\): +(\S+)`).FindStringSubmatch(stdout.String())
	if student == nil {
		t.Fatalf("the demo does not offer the LTI tool:\n%s", stdout.String())
	}
	page := string(browsertest.Headless(t, browser, student[1], "--virtual-time-budget=20000", "--dump-dom"))
	if !strings.Contains(page, "Enrolments of") || !strings.Contains(page, "Students are enrolled in this course") {
		t.Errorf("the student's launch in chromium ended on:\n%s", page)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("the demo ended with %v", err)
	}
}

func fetch(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d\n%s", url, resp.StatusCode, b)
	}
	return string(b)
}
