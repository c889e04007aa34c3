package serve_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/schedule"
	"github.com/mimwarehouse/mim/internal/serve"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// event is the one schedule event recorded for a due time, besides "started".
func event(t *testing.T, db *pgtest.DB, due time.Time) (kind, status, note string, runID *int64) {
	t.Helper()
	err := db.Pool.QueryRow(context.Background(), `SELECT kind, coalesce(status, ''), coalesce(note, ''), run_id
		FROM ctl.schedule_event WHERE job = 'nightly' AND due_at = $1 AND kind <> 'started'`, due).Scan(&kind, &status, &note, &runID)
	if err != nil {
		t.Fatal(err)
	}
	return kind, status, note, runID
}

// A due time runs the job and records how its run ended; one that meets
// another run's lock is skipped, not failed; one that comes while the
// schedules are paused is held without running; one whose run did not
// start is recorded as failed and is an error.
func TestRunDueRecordsWhatHappened(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	jobs := serve.Jobs{Pool: db.Pool, Logger: slog.New(slog.DiscardHandler), Host: "test-host"}
	spec := schedule.MustParse("@daily", time.UTC)
	ran := 0
	job := func(run *serve.Run, err error) serve.Job {
		return serve.Job{Name: "nightly", Expr: "@daily", Run: func(context.Context) (*serve.Run, error) { ran++; return run, err }}
	}
	day := time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)

	run, err := ledger.Begin(ctx, db.Pool, "run", pgtest.Environment, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Finish(ctx, ledger.Partial, 1, errors.New("a site failed")); err != nil {
		t.Fatal(err)
	}
	if err := jobs.RunDue(ctx, job(&serve.Run{ID: run.ID, Status: "partial"}, errors.New("a site failed")), spec, day); err == nil {
		t.Error("a run that failed is not an error of the job")
	}
	if kind, status, _, id := event(t, db, day); kind != schedule.Finished || status != "partial" || id == nil || *id != run.ID {
		t.Errorf("finished run recorded as %s %s %v", kind, status, id)
	}

	day = day.AddDate(0, 0, 1)
	locked := &warehouse.LockedError{Holder: "mim run on other-host"}
	if err := jobs.RunDue(ctx, job(nil, locked), spec, day); err != nil {
		t.Errorf("a locked-out time is an error: %v", err)
	}
	if kind, _, note, _ := event(t, db, day); kind != schedule.Skipped || !strings.Contains(note, "other-host") {
		t.Errorf("locked-out time recorded as %s (%s)", kind, note)
	}

	day = day.AddDate(0, 0, 1)
	if err := jobs.RunDue(ctx, job(nil, errors.New("no configuration")), spec, day); err == nil {
		t.Error("a run that did not start is not an error")
	}
	if kind, status, note, _ := event(t, db, day); kind != schedule.Finished || status != "failed" || !strings.Contains(note, "did not start: no configuration") {
		t.Errorf("a run that did not start recorded as %s %s (%s)", kind, status, note)
	}

	if _, _, err := schedule.PauseSchedules(ctx, db.Pool, "ops", "rollover 2026"); err != nil {
		t.Fatal(err)
	}
	day, before := day.AddDate(0, 0, 1), ran
	if err := jobs.RunDue(ctx, job(&serve.Run{ID: run.ID, Status: "succeeded"}, nil), spec, day); err != nil {
		t.Errorf("a held time is an error: %v", err)
	}
	if kind, _, note, _ := event(t, db, day); kind != schedule.Held || !strings.Contains(note, "rollover 2026") || ran != before {
		t.Errorf("a paused time recorded as %s (%s), run %d times", kind, note, ran-before)
	}
}

// A schedule that does not parse is a configuration error naming its key.
func TestSchedulerRefusesABadSchedule(t *testing.T) {
	db := pgtest.New(t)
	jobs := serve.Jobs{Pool: db.Pool, Logger: slog.New(slog.DiscardHandler), Host: "test-host"}
	_, err := jobs.Scheduler(context.Background(), []serve.Job{{Name: "groups", Expr: "every tuesday"}})
	var se *serve.ScheduleError
	if !errors.As(err, &se) || se.ExitCode() != 2 || !strings.HasPrefix(err.Error(), "schedule.groups: ") {
		t.Errorf("a bad schedule: %v", err)
	}
}
