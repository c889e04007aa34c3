package night_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/night"
	"github.com/mimwarehouse/mim/internal/notify/smtptest"
	"github.com/mimwarehouse/mim/internal/pipeline"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// stepStatus joins the distinct statuses of run runID's steps of stage and
// instance.
func stepStatus(t *testing.T, w *world, runID int64, stage, instance string) string {
	t.Helper()
	var statuses []string
	for _, s := range w.steps(t, runID, func(s ledger.StepSummary) bool { return s.Key.Stage == stage && s.Key.Instance == instance }) {
		if !slices.Contains(statuses, s.Status) {
			statuses = append(statuses, s.Status)
		}
	}
	slices.Sort(statuses)
	return strings.Join(statuses, ",")
}

// A site whose token is wrong fails its extract: its group sync is skipped
// and the export leaves it out, while SITS, CMIS, the transform and the
// other site go ahead.
func TestRunLeavesOutAFailedSite(t *testing.T) {
	w := newWorld(t, testEnvironment)
	sites := append([]synth.WorldSite(nil), w.sites...)
	bad := sites[1].Name
	sites[1].Token = "not-the-token-of-this-site"
	r := w.env(t, sites)
	res, err := r.run(t, night.Options{Job: "test run"})
	out := r.out
	var re *pipeline.RunError
	if !errors.As(err, &re) || re.ExitCode() != 1 || res.Status() != ledger.Partial {
		t.Fatalf("run: %v (status %s)\n%s", err, res.Status(), out.String())
	}
	want := map[string]string{
		"extract:sits": "succeeded", "extract:cmis": "succeeded", "extract:moodle:main": "succeeded",
		"extract:moodle:" + bad: "failed", "transform": "succeeded", "export": "succeeded",
		"groups:main": "succeeded", "groups:" + bad: "skipped",
	}
	for task, status := range want {
		if o, ok := res.Outcome(task); !ok || o.Status != status {
			t.Errorf("%s: %s, want %s", task, o.Status, status)
		}
	}
	if o, _ := res.Outcome("export"); !strings.Contains(strings.Join(o.Lines, "\n"), "left out, their extract failed tonight: "+bad) {
		t.Errorf("the export does not say it left %s out: %v", bad, o.Lines)
	}
	if s := stepStatus(t, w, res.RunID, "groups", bad); s != "skipped" {
		t.Errorf("ledger: groups/%s %q", bad, s)
	}
	var n int
	if err := w.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ctl.export_run WHERE instance = $1`, bad).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d exports of the failed site (%v)", n, err)
	}
	if err := w.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ctl.export_run WHERE instance = 'main' AND status = 'published'`).Scan(&n); err != nil || n == 0 {
		t.Errorf("main was not exported (%v)", err)
	}
	if r, err := ledger.RunByID(context.Background(), w.db.Pool, res.RunID); err != nil || r.Status != "partial" || r.ExitCode == nil || *r.ExitCode != 1 {
		t.Errorf("the ledger's run: %+v (%v)", r, err)
	}
	text := out.String()
	for _, want := range []string{"groups:" + bad + " skipped: not run: extract:moodle:" + bad + " failed", "---------- Finished test run"} {
		if !strings.Contains(text, want) {
			t.Errorf("the output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "not-the-token-of-this-site") {
		t.Error("the output shows a token")
	}
}

// A warehouse labelled with another environment than the configuration's
// is refused by the environment guard before group sync writes anything:
// the run exits 3.
func TestRunRefusedByTheEnvironmentGuard(t *testing.T) {
	w := newWorld(t, "production")
	r := w.env(t, w.sites)
	res, err := r.run(t, night.Options{Stages: []string{"extract", "transform", "groups"}})
	out := r.out
	if exitCode(err) != 3 || res.Status() != ledger.Refused {
		t.Fatalf("exit %d, status %s: %v\n%s", exitCode(err), res.Status(), err, out.String())
	}
	if o, _ := res.Outcome("groups:main"); o.Status != ledger.Refused {
		t.Errorf("groups:main %s", o.Status)
	}
	var n int
	if err := w.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ctl.guard_event WHERE run_id = $1 AND guard = 'environment' AND decision = 'refused'`,
		res.RunID).Scan(&n); err != nil || n == 0 {
		t.Errorf("no environment refusal recorded (%v)", err)
	}
	if !strings.Contains(out.String(), "environment main") {
		t.Errorf("the summary does not show the refusal:\n%s", out.String())
	}
}

func TestRunRefusesToOverlap(t *testing.T) {
	w := newWorld(t, testEnvironment)
	lock, err := warehouse.AcquireRunLock(context.Background(), w.db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	r := w.env(t, w.sites)
	res, err := night.Run(context.Background(), r.Env, night.Options{Progress: "off", Out: r.out})
	var le *warehouse.LockedError
	if res != nil || !errors.As(err, &le) {
		t.Errorf("a second run started (%v, %v)", res, err)
	}
}

// The summary goes by mail to notify.to, shaped like the old job mail.
func TestRunMailsTheSummary(t *testing.T) {
	w := newWorld(t, testEnvironment)
	srv := smtptest.Start(t)
	r := w.env(t, w.sites)
	r.Config.Notify = config.Notify{SMTP: config.SMTP{Host: srv.Host, Port: srv.Port, From: "mim@example.ac.uk"}, To: []string{"lama@example.ac.uk"}}
	res, err := r.run(t, night.Options{Job: "nightly", Stages: []string{"transform"}, Mail: true})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages sent", len(msgs))
	}
	m, err := msgs[0].Parse()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(m.Body)
	subject := m.Header.Get("Subject")
	if subject != fmt.Sprintf("MIM nightly on demo: run %d succeeded", res.RunID) || msgs[0].To[0] != "lama@example.ac.uk" {
		t.Errorf("subject %q to %v", subject, msgs[0].To)
	}
	for _, want := range []string{"MIM nightly has completed: run ", "---------- Execute nightly (run ", "transform: ", "---------- Finished nightly (run "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the mail lacks %q:\n%s", want, body)
		}
	}
	if s := stepStatus(t, w, res.RunID, "notify", ""); s != "succeeded" {
		t.Errorf("ledger: notify step %q", s)
	}
}

// A SITS view that cannot be read fails the SITS extract (the other views
// land): the transform and everything after it are skipped, so yesterday's
// marts and feeds stand.
func TestRunStopsAtAFailedSITSExtract(t *testing.T) {
	w := newWorld(t, testEnvironment)
	if _, err := w.db.Pool.Exec(context.Background(), `ALTER TABLE sismgr.ucl_bdo_v_moodle_student_enrl RENAME TO gone`); err != nil {
		t.Fatal(err)
	}
	r := w.env(t, w.sites)
	res, err := r.run(t, night.Options{})
	out := r.out
	if exitCode(err) != 1 || res.Status() != ledger.Partial {
		t.Fatalf("exit %d, status %s: %v", exitCode(err), res.Status(), err)
	}
	for task, want := range map[string]string{"extract:sits": "failed", "extract:cmis": "succeeded", "extract:moodle:main": "succeeded",
		"transform": "skipped", "export": "skipped", "groups:main": "skipped"} {
		if o, _ := res.Outcome(task); o.Status != want {
			t.Errorf("%s: %s, want %s", task, o.Status, want)
		}
	}
	// The views that could be read landed: the stage's own result says so.
	o, _ := res.Outcome("extract:sits")
	x, ok := o.Value.(*night.ExtractOutcome)
	if !ok || len(x.Sources) != 1 {
		t.Fatalf("extract:sits carries %T, not its outcome", o.Value)
	}
	landed := map[string]int64{}
	for _, r := range x.Sources[0].Entities {
		if r.Status == ledger.Succeeded {
			landed[r.ID.Entity] = r.Result.New
		}
	}
	if landed["student"] == 0 || landed["student_enrl"] != 0 {
		t.Errorf("landed: %v; want the students, and no registration", landed)
	}
	if !strings.Contains(out.String(), "transform skipped: not run: extract:sits failed") {
		t.Errorf("the output does not say why the transform was skipped:\n%s", out.String())
	}
}

// Defect 5 of the real-Moodle comparison: Moodle redirects a request for
// another host than its wwwroot (localhost for a site at 127.0.0.1) with
// HTTP 303, before any function runs. The configured URL then names
// another site root: that is the environment guard's "live site differs",
// a refusal (exit 3, recorded), not a failure.
func TestRunRefusesASiteThatRedirects(t *testing.T) {
	w := newWorld(t, testEnvironment)
	sites := append([]synth.WorldSite(nil), w.sites...)
	bad := sites[1].Name
	sites[1].URL = strings.Replace(sites[1].URL, "127.0.0.1", "localhost", 1)
	r := w.env(t, sites)
	res, err := r.run(t, night.Options{Job: "test run"})
	out := r.out
	var re *pipeline.RunError
	if !errors.As(err, &re) || re.ExitCode() != 3 || res.Status() != ledger.Refused {
		t.Fatalf("run: %v (status %s)\n%s", err, res.Status(), out.String())
	}
	for task, status := range map[string]string{"extract:moodle:" + bad: "refused", "groups:" + bad: "skipped",
		"extract:moodle:main": "succeeded", "groups:main": "succeeded"} {
		if o, ok := res.Outcome(task); !ok || o.Status != status {
			t.Errorf("%s: %s, want %s", task, o.Status, status)
		}
	}
	var detail string
	if err := w.db.Pool.QueryRow(context.Background(), `SELECT detail->>'live_siteurl' FROM ctl.guard_event
		WHERE guard = 'environment' AND decision = 'refused' AND instance = $1`, bad).Scan(&detail); err != nil {
		t.Fatalf("no environment refusal recorded for %s: %v", bad, err)
	}
	if !strings.HasPrefix(detail, "http://127.0.0.1:") {
		t.Errorf("the refusal names %q as the live site, not where Moodle redirected", detail)
	}
}
