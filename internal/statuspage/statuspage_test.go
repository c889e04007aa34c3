package statuspage

import (
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/ledger/ledgertest"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/schedule"
	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/internal/statuspage/browsertest"
)

// seed records what a night leaves behind: a run with steps, guard
// decisions (one course held), a published export, a site fingerprint, a
// skipped schedule time and an armed override.
func seed(t *testing.T, db *pgtest.DB) int64 {
	t.Helper()
	ctx := context.Background()
	run, err := ledger.Begin(ctx, db.Pool, "run", "test", "v-test", []string{"run"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		key    ledger.StepKey
		counts ledger.Counts
		err    error
	}{
		{ledger.StepKey{Stage: "extract", Source: "sits", Instance: "sits", Entity: "student"}, ledger.Counts{In: 300, New: 300}, nil},
		{ledger.StepKey{Stage: "extract", Source: "moodle", Instance: "main", Entity: "users"}, ledger.Counts{In: 420, New: 5, Unchanged: 415}, nil},
		{ledger.StepKey{Stage: "extract", Source: "moodle", Instance: "main", Entity: "enrolments"}, ledger.Counts{In: 900, Errors: 2},
			errors.New("2 courses could not be read: kept as they were")},
		{ledger.StepKey{Stage: "transform", Entity: "mart.enrolment_drift"}, ledger.Counts{In: 37}, nil},
	} {
		st, err := run.Step(ctx, s.key)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Finish(ctx, ledger.Outcome(s.err), s.counts, nil, s.err); err != nil {
			t.Fatal(err)
		}
	}
	if err := run.Finish(ctx, ledger.Partial, 1, errors.New("extract:moodle:main: 2 courses could not be read")); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, `INSERT INTO ctl.guard_event (run_id, instance, guard, decision, subject, previous, current, percent, limit_value)
		VALUES ($1, 'main', 'threshold', 'passed', 'active_memberships', 1200, 1180, 98.3, 75),
		       ($1, 'main', 'course_drop', 'held', 'HELD1234-A6U-T1-2025', 40, 3, 7.5, 50)`, run.ID)
	for i, n := range []int{1100, 1150, 1180} {
		mustExec(t, db, `INSERT INTO ctl.export_run (run_id, instance, feed, status, active_students, active_memberships, created_at)
			VALUES ($1, 'main', 'ims', 'published', 250, $2, now() - make_interval(days => $3))`, run.ID, n, 3-i)
	}
	mustExec(t, db, `INSERT INTO ctl.moodle_site (instance, configured_url, environment, siteurl, release)
		VALUES ('main', 'http://127.0.0.1:8080', 'test', 'http://127.0.0.1:8080', '4.5 (Build: 20241007)')`)
	mustExec(t, db, `INSERT INTO ctl.schedule_event (job, schedule, due_at, kind, note, host)
		VALUES ('groups', '*/30 7-19 * * 1-5', now(), 'skipped', 'another MIM run holds the warehouse run lock', 'test')`)
	if _, err := settings.Set(ctx, db.Pool, "threshold_override", "true", "lama@example.ac.uk", "rollover", nil); err != nil {
		t.Fatal(err)
	}
	return run.ID
}

func mustExec(t *testing.T, db *pgtest.DB, sql string, args ...any) {
	t.Helper()
	if _, err := db.Pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func serve(t *testing.T, db *pgtest.DB) *httptest.Server {
	t.Helper()
	nightly := schedule.MustParse("CRON_TZ=Europe/London 15 0 * * *", nil)
	h := New(db.Pool, Options{Environment: "test", Version: "v-test", Upcoming: func() []schedule.Upcoming {
		return []schedule.Upcoming{{Job: "nightly", Schedule: nightly.String(), Next: nightly.Next(time.Now())}}
	}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (string, *http.Response) {
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
	return string(b), resp
}

func TestPageShowsTheNight(t *testing.T) {
	db := pgtest.New(t)
	runID := seed(t, db)
	srv := serve(t, db)
	body, resp := get(t, srv.URL+"/")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d:\n%s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	for _, want := range []string{
		fmt.Sprintf(`id="run-%d"`, runID), `<span class="status partial">partial</span>`,
		"extract/moodle/main/enrolments", "2 courses could not be read: kept as they were", // a step and its error
		"threshold_override is ARMED by lama@example.ac.uk", // the armed override, who, why, when it lapses
		"&#34;rollover&#34;; it lapses after the next run that uses it, or at",
		"HELD1234-A6U-T1-2025",                         // a held course
		"another MIM run holds the warehouse run lock", // a skipped schedule time
		"CRON_TZ=Europe/London 15 0 * * *",             // the upcoming job
		"4.5 (Build: 20241007)",                        // the site fingerprint
		"Active memberships published, by site",
		"mart.enrolment_drift is not built yet", // the empty test warehouse has no marts
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// Three published exports draw one line of three points.
	if n := strings.Count(body, "<circle"); n < 3 {
		t.Errorf("the charts draw %d points; want at least the 3 published exports", n)
	}
	// Nothing is loaded from elsewhere.
	if m := regexp.MustCompile(`(?i)<(script|link|img|iframe)\b|\bsrc=`).FindString(body); m != "" {
		t.Errorf("the page references outside resources: %s", m)
	}
	run, resp := get(t, fmt.Sprintf("%s/runs/%d", srv.URL, runID))
	if resp.StatusCode != 200 || !strings.Contains(run, "HELD1234-A6U-T1-2025") || !strings.Contains(run, "mart.enrolment_drift") {
		t.Errorf("run page: status %d\n%s", resp.StatusCode, run)
	}
	if _, resp := get(t, srv.URL+"/runs/999999"); resp.StatusCode != 404 {
		t.Errorf("an unknown run answers %d", resp.StatusCode)
	}
}

func TestDriftPerSite(t *testing.T) {
	db := pgtest.New(t)
	mustExec(t, db, `CREATE TABLE mart.enrolment_drift AS SELECT * FROM (VALUES
		('main', 'missing'), ('main', 'missing'), ('main', 'extra'), ('archive', 'suspended'), ('main', 'brand_new_kind')) v(instance, kind)`)
	srv := serve(t, db)
	body, _ := get(t, srv.URL+"/")
	i := strings.Index(body, `<table class="drift">`)
	if i < 0 {
		t.Fatalf("no drift table:\n%s", body)
	}
	table := body[i : i+strings.Index(body[i:], "</table>")]
	cells := regexp.MustCompile(`<t[dh][^>]*>([^<]*)</t[dh]>`).FindAllStringSubmatch(table, -1)
	var got []string
	for _, c := range cells {
		got = append(got, c[1])
	}
	want := "site missing suspended extra unknown user ambiguous user unknown course ambiguous course brand new kind total " +
		"archive 0 1 0 0 0 0 0 0 1 main 2 0 1 0 0 0 0 1 4"
	if strings.Join(got, " ") != want {
		t.Errorf("drift table:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}

func TestPageRendersInChromium(t *testing.T) {
	browser := browsertest.Chromium(t)
	db := pgtest.New(t)
	runID := seed(t, db)
	srv := serve(t, db)

	// The DOM as the browser built it.
	dom := string(browsertest.Headless(t, browser, srv.URL+"/", "--dump-dom"))
	for _, want := range []string{
		"<h1>MIM status</h1>", fmt.Sprintf(`id="run-%d"`, runID), "HELD1234-A6U-T1-2025",
		`class="banner override-armed"`, "<svg", "<polyline",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("chromium's DOM lacks %q", want)
		}
	}
	// The page paints: a screenshot is not one flat colour.
	shot := filepath.Join(t.TempDir(), "status.png")
	if dir := os.Getenv("MIM_SCREENSHOT_DIR"); dir != "" {
		shot = filepath.Join(dir, "status.png") // to look at it
	}
	browsertest.Headless(t, browser, srv.URL+"/", "--screenshot="+shot, "--window-size=1280,1800", "--hide-scrollbars")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	colours := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
		}
	}
	if len(colours) < 8 {
		t.Errorf("the screenshot has %d colours: the page did not render", len(colours))
	}
}

// BenchmarkPage renders the page over a ledger of many nights: 60 runs of
// 120 steps, guard events and exports (MIM_BENCH_RUNS changes the count).
func BenchmarkPage(b *testing.B) {
	db := pgtest.New(b)
	ctx := context.Background()
	runs := 60
	if n, err := strconv.Atoi(os.Getenv("MIM_BENCH_RUNS")); err == nil && n > 0 {
		runs = n
	}
	var ids []int64
	var started []time.Time
	for _, n := range ledgertest.Nights(b, db.Pool, runs, 120) {
		ids, started = append(ids, n.ID), append(started, n.Started)
	}
	for _, sql := range []string{
		`INSERT INTO ctl.guard_event (run_id, instance, guard, decision, subject, previous, current, percent, limit_value)
		 SELECT run_id, 'main', 'threshold', 'passed', 'active_students', 1000, 990, 99, 75 FROM unnest($1::bigint[], $2::timestamptz[]) AS n(run_id, started_at)`,
		`INSERT INTO ctl.export_run (run_id, instance, feed, status, active_students, active_memberships, created_at)
		 SELECT run_id, 'main', 'ims', 'published', 1000, 5000 + run_id, started_at FROM unnest($1::bigint[], $2::timestamptz[]) AS n(run_id, started_at)`,
	} {
		if _, err := db.Pool.Exec(ctx, sql, ids, started); err != nil {
			b.Fatal(err)
		}
	}
	h := New(db.Pool, Options{Environment: "test", Version: "bench"})
	req := httptest.NewRequest("GET", "/", nil)
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func TestLongStagesAreSummedUp(t *testing.T) {
	var steps []ledger.StepSummary
	steps = append(steps, ledger.StepSummary{Key: ledger.StepKey{Stage: "extract", Source: "sits", Instance: "sits"}, Status: ledger.Succeeded})
	steps = append(steps, ledger.StepSummary{Key: ledger.StepKey{Stage: "extract", Source: "sits", Instance: "sits", Entity: "student"}, Status: ledger.Succeeded, Counts: ledger.Counts{In: 5}})
	for i := range 20 {
		st := ledger.StepSummary{Key: ledger.StepKey{Stage: "transform", Entity: fmt.Sprintf("stg.m%02d", i)}, Status: ledger.Succeeded, Counts: ledger.Counts{In: 10}}
		if i == 7 {
			st.Status = ledger.Failed
		}
		steps = append(steps, st)
	}
	g := groupSteps(steps)
	if len(g) != 2 || g[0].Stage != "extract" || len(g[0].Steps) != 1 || g[0].Summary != "" {
		t.Fatalf("extract group: %+v", g)
	}
	if g[1].Summary != "20 steps (19 succeeded, 1 failed), 200 rows" || len(g[1].Steps) != 1 || g[1].Steps[0].Key.Entity != "stg.m07" {
		t.Errorf("transform group: %q %+v", g[1].Summary, g[1].Steps)
	}
}

// Changes sent in files and not yet seen applied are listed per site and
// feed; those pending for pending_alert_nights extracts with their cause.
func TestPendingPerSite(t *testing.T) {
	db := pgtest.New(t)
	since := time.Date(2026, 12, 5, 0, 20, 0, 0, time.UTC)
	h := New(db.Pool, Options{Environment: "test", Pending: func(context.Context) ([]Pending, error) {
		return []Pending{
			{Instance: "main", Feed: "ims", Count: 12, Long: 10, Nights: 2, Oldest: since,
				Cause: "no change MIM sent has been seen applied: Moodle's IMS task may not be running", Examples: []string{"C1: 21000001 (roletype 01, add)"}},
			{Instance: "archive", Feed: "profile_csv", Count: 3, Nights: 2},
		}, nil
	}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	body, _ := get(t, srv.URL+"/")
	for _, want := range []string{`<h2 id="pending">`, "Moodle&#39;s IMS task may not be running", "C1: 21000001 (roletype 01, add)",
		"within 2 extracts", "<td>archive</td><td>profile_csv</td>"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

// A pause (mim pause, from any process) is on the page with who and why,
// and so is a due time it held.
func TestPageShowsThePause(t *testing.T) {
	db := pgtest.New(t)
	for _, sql := range []string{
		`INSERT INTO ctl.schedule_pause (paused_by, reason) VALUES ('lama@host', 'rollover 2026')`,
		`INSERT INTO ctl.schedule_event (job, schedule, due_at, kind, note, host) VALUES ('nightly', '@daily', now(), 'held', 'schedules paused by lama@host', 'h')`,
	} {
		if _, err := db.Pool.Exec(context.Background(), sql); err != nil {
			t.Fatal(err)
		}
	}
	body, _ := get(t, serve(t, db).URL+"/")
	for _, want := range []string{`id="paused"`, "Schedules paused by lama@host since", ": rollover 2026", "mim resume",
		`<span class="status held">held</span>`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
