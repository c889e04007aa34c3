package app

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/schedule"
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
	if err := runScheduled(ctx, e, db.Pool, "test-host", jobs[0], spec, due); err != nil {
		t.Fatalf("a locked-out time is not an error: %v", err)
	}
	var kind, note string
	if err := db.Pool.QueryRow(ctx, `SELECT kind, note FROM ctl.schedule_event WHERE job = 'nightly' AND due_at = $1 AND kind <> 'started'`, due).Scan(&kind, &note); err != nil {
		t.Fatal(err)
	}
	if kind != "skipped" || note == "" {
		t.Errorf("recorded %s (%s); want skipped with the holder", kind, note)
	}
	var runs int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM ctl.run`).Scan(&runs); err != nil || runs != 0 {
		t.Errorf("%d runs recorded (%v)", runs, err)
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
