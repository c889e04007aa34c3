package app

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/schedule"
	"github.com/mimwarehouse/mim/internal/serve"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// A scheduled time that comes while another run holds the lock is skipped
// and recorded, not queued and not failed.
func TestScheduledRunSkippedWhileLocked(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	cfg, err := config.Parse([]byte("environment: test\nwarehouse: {dsn: \"${DSN}\"}\nschedule: {nightly: \"@daily\"}\n"),
		func(string) (string, bool) { return db.DSN.Reveal(), true })
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{Stdout: io.Discard, Stderr: io.Discard, Logger: slog.New(slog.DiscardHandler)}
	e.SetConfig(cfg)
	defer e.Close()
	lock, err := warehouse.AcquireRunLock(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	jobs := serveJobs(cfg)
	if len(jobs) != 1 || jobs[0].name != "nightly" {
		t.Fatalf("jobs %+v", jobs)
	}
	// Only the transform, so nothing needs sources: the lock stops it first.
	jobs[0].opts.Stages = []string{StageTransform}
	due := time.Date(2026, 3, 29, 0, 15, 0, 0, time.UTC)
	spec := schedule.MustParse(jobs[0].expr, time.UTC)
	if err := (serve.Jobs{Pool: db.Pool, Logger: e.Logger, Host: "test-host"}).RunDue(ctx, jobs[0].serveJob(e), spec, due); err != nil {
		t.Fatalf("a locked-out time is not an error: %v", err)
	}
	var kind, note string
	if err := db.Pool.QueryRow(ctx, `SELECT kind, note FROM ctl.schedule_event WHERE job = 'nightly' AND due_at = $1 AND kind <> 'started'`, due).Scan(&kind, &note); err != nil {
		t.Fatal(err)
	}
	if kind != "skipped" || note == "" {
		t.Errorf("recorded %s (%s); want skipped with the holder", kind, note)
	}
	if runs, err := ledger.Recent(ctx, db.Pool, 10); err != nil || len(runs) != 0 {
		t.Errorf("%d runs recorded (%v)", len(runs), err)
	}
}

func TestServeJobs(t *testing.T) {
	cfg, err := config.Parse([]byte(`environment: test
sources:
  cmis: {driver: pgx, dsn: "postgres:///x", schema: moodlemgr}
schedule: {nightly: "15 0 * * *", groups: "*/30 7-19 * * 1-5"}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	jobs := serveJobs(cfg)
	if len(jobs) != 2 {
		t.Fatalf("jobs %+v", jobs)
	}
	n, g := jobs[0].opts, jobs[1].opts
	if n.Job != "nightly" || len(n.Stages) != 0 || !n.Mail {
		t.Errorf("nightly: %+v", n)
	}
	if g.Job != "groups" || g.Mail || len(g.Sources) != 1 || g.Sources[0] != "cmis" ||
		len(g.Stages) != 3 || g.Stages[0] != StageExtract || g.Stages[2] != StageGroups {
		t.Errorf("groups: %+v", g)
	}
}

// While mim pause holds the schedules a due time is recorded as held and
// nothing runs; after mim resume the job runs again. The pause is made by
// the command line, as another process would.
func TestPausedScheduleIsHeld(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	cfgText := "environment: test\nwarehouse: {dsn: \"${DSN}\"}\nschedule: {nightly: \"@daily\"}\n"
	cfg, err := config.Parse([]byte(cfgText), func(string) (string, bool) { return db.DSN.Reveal(), true })
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mim.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(cfgText, "${DSN}", db.DSN.Reveal())), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) string {
		t.Helper()
		var out, errb strings.Builder
		if code := Main(ctx, append([]string{"--config", path}, args...), &out, &errb); code != 0 {
			t.Fatalf("mim %v: exit %d\n%s%s", args, code, out.String(), errb.String())
		}
		return out.String()
	}
	if out := cli("pause", "--reason", "rollover 2026"); !strings.Contains(out, "rollover 2026") || !strings.Contains(out, "mim resume") {
		t.Errorf("mim pause said:\n%s", out)
	}
	if out := cli("pause"); !strings.Contains(out, "already paused") {
		t.Errorf("a second mim pause said:\n%s", out)
	}
	if out := cli("status"); !strings.Contains(out, "rollover 2026") {
		t.Errorf("mim status does not show the pause:\n%s", out)
	}
	if out := cli("run", "--if-not-paused"); !strings.Contains(out, "not running: the schedules are paused") {
		t.Errorf("mim run --if-not-paused said:\n%s", out)
	}

	e := &Env{Stdout: io.Discard, Stderr: io.Discard, Logger: slog.New(slog.DiscardHandler)}
	e.SetConfig(cfg)
	defer e.Close()
	jobs := serveJobs(cfg)
	jobs[0].opts.Stages = []string{StageTransform}
	spec := schedule.MustParse(jobs[0].expr, time.UTC)
	due := time.Date(2026, 8, 3, 0, 0, 0, 0, time.UTC)
	if err := (serve.Jobs{Pool: db.Pool, Logger: e.Logger, Host: "test-host"}).RunDue(ctx, jobs[0].serveJob(e), spec, due); err != nil {
		t.Fatalf("a held time is not an error: %v", err)
	}
	var kind, note string
	if err := db.Pool.QueryRow(ctx, `SELECT kind, note FROM ctl.schedule_event WHERE due_at = $1`, due).Scan(&kind, &note); err != nil {
		t.Fatal(err)
	}
	if kind != schedule.Held || !strings.Contains(note, "rollover 2026") {
		t.Errorf("recorded %s (%s); want held with the reason", kind, note)
	}
	if runs, err := ledger.Recent(ctx, db.Pool, 10); err != nil || len(runs) != 0 {
		t.Errorf("%d runs while paused (%v)", len(runs), err)
	}

	if out := cli("resume"); !strings.Contains(out, "schedules resumed") {
		t.Errorf("mim resume said:\n%s", out)
	}
	if out := cli("resume"); !strings.Contains(out, "were not paused") {
		t.Errorf("a second mim resume said:\n%s", out)
	}
	due = due.Add(24 * time.Hour)
	_ = (serve.Jobs{Pool: db.Pool, Logger: e.Logger, Host: "test-host"}).RunDue(ctx, jobs[0].serveJob(e), spec, due)
	if runs, err := ledger.Recent(ctx, db.Pool, 10); err != nil || len(runs) != 1 {
		t.Errorf("%d runs after resume, want 1 (%v)", len(runs), err)
	}
}
