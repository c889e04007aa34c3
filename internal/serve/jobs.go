package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/schedule"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Job is one scheduled kind of run.
type Job struct {
	Name string
	Expr string // the schedule (schedule.NAME in the configuration)
	// Run runs it once; a run that did not start returns a nil *Run.
	Run func(ctx context.Context) (*Run, error)
}

// Run is what a job's run left in the ledger.
type Run struct {
	ID     int64
	Status string
}

// ScheduleError is a schedule that does not parse: a configuration error.
type ScheduleError struct {
	Job string
	Err error
}

func (e *ScheduleError) Error() string { return fmt.Sprintf("schedule.%s: %v", e.Job, e.Err) }

// ExitCode makes a bad schedule a usage error (exit 2).
func (e *ScheduleError) ExitCode() int { return 2 }

// Jobs runs jobs on their schedules for one daemon, recording every event
// (started, finished, skipped, missed, held) in the warehouse.
type Jobs struct {
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	Host   string // the daemon's host, recorded with each event
}

// Scheduler builds the scheduler of jobs and records the times missed
// while no daemon was running.
func (s Jobs) Scheduler(ctx context.Context, jobs []Job) (*schedule.Scheduler, error) {
	var sjobs []schedule.Job
	specs := map[string]*schedule.Schedule{}
	for _, j := range jobs {
		spec, err := schedule.Parse(j.Expr, time.Local)
		if err != nil {
			return nil, &ScheduleError{Job: j.Name, Err: err}
		}
		specs[j.Name] = spec
		sjobs = append(sjobs, schedule.Job{Name: j.Name, Schedule: spec, Run: func(ctx context.Context, due time.Time) error {
			return s.RunDue(ctx, j, spec, due)
		}})
		if err := s.recordMissed(ctx, j.Name, spec, time.Now()); err != nil {
			s.Logger.Warn("checking for missed runs", "job", j.Name, "error", err)
		}
	}
	if len(sjobs) == 0 {
		s.Logger.Info("no schedule configured (schedule.nightly, schedule.groups, schedule.intraday): serving pages and metrics only")
	}
	return schedule.New(sjobs, schedule.WithEvents(func(ev schedule.Event) {
		switch ev.Kind {
		case schedule.Skipped, schedule.Missed:
			s.Logger.Warn("scheduled run "+ev.Kind, "job", ev.Job, "due", ev.Due, "note", ev.Note)
			s.record(ev.Job, specs[ev.Job].String(), ev.Due, ev.Kind, nil, "", ev.Note)
		}
	}))
}

// RunDue runs one due time of j: held while the schedules are paused,
// skipped while another run holds the lock, otherwise run and recorded.
func (s Jobs) RunDue(ctx context.Context, j Job, spec *schedule.Schedule, due time.Time) error {
	// mim pause may have been run by anyone since the last time: ask the
	// warehouse each time. If it cannot say, the run goes ahead and meets
	// the same warehouse (and its lock) anyway.
	if p, err := schedule.CurrentPause(ctx, s.Pool); err != nil {
		s.Logger.Warn("reading whether the schedules are paused", "job", j.Name, "error", err)
	} else if p != nil {
		s.Logger.Warn("scheduled run held: the schedules are paused", "job", j.Name, "due", due, "paused_by", p.By, "reason", p.Reason)
		s.record(j.Name, spec.String(), due, schedule.Held, nil, "", "schedules "+p.String()+"; mim resume releases them")
		return nil
	}
	s.Logger.Info("scheduled run starting", "job", j.Name, "due", due)
	s.record(j.Name, spec.String(), due, schedule.Started, nil, "", "")
	res, err := j.Run(ctx)
	var locked *warehouse.LockedError
	switch {
	case errors.As(err, &locked):
		s.Logger.Warn("scheduled run skipped: another run holds the lock", "job", j.Name, "due", due, "holder", locked.Holder)
		s.record(j.Name, spec.String(), due, schedule.Skipped, nil, "", locked.Error())
		return nil
	case res == nil:
		s.Logger.Error("scheduled run did not start", "job", j.Name, "due", due, "error", err)
		s.record(j.Name, spec.String(), due, schedule.Finished, nil, ledger.Failed, "did not start: "+err.Error())
		return err
	}
	s.Logger.Info("scheduled run finished", "job", j.Name, "run_id", res.ID, "status", res.Status)
	s.record(j.Name, spec.String(), due, schedule.Finished, &res.ID, res.Status, "")
	return err
}

func (s Jobs) record(job, expr string, due time.Time, kind string, runID *int64, status, note string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := s.Pool.Exec(ctx, `INSERT INTO ctl.schedule_event (job, schedule, due_at, kind, run_id, status, note, host)
		VALUES ($1, $2, $3, $4, $5, NULLIF($6, ''), NULLIF($7, ''), $8)`, job, expr, due, kind, runID, status, note, s.Host)
	if err != nil {
		s.Logger.Error("recording a schedule event", "job", job, "kind", kind, "error", err)
	}
}

// recordMissed records, once, the times a job was due while no daemon was
// running: those after the last time a scheduler handled it. A job never
// handled before has missed nothing.
func (s Jobs) recordMissed(ctx context.Context, name string, spec *schedule.Schedule, now time.Time) error {
	var last *time.Time
	if err := s.Pool.QueryRow(ctx, `SELECT max(due_at) FROM ctl.schedule_event WHERE job = $1`, name).Scan(&last); err != nil {
		return err
	}
	if last == nil {
		// First start: note the schedule so the next start can tell what it missed.
		s.record(name, spec.String(), now, schedule.Started, nil, "", "the scheduler started; nothing run")
		return nil
	}
	latest, n := spec.Missed(*last, now)
	if n == 0 {
		return nil
	}
	note := fmt.Sprintf("%d time(s) passed while mim serve was not running (%s ago last handled); not run: start mim run by hand if needed",
		n, time.Since(*last).Round(time.Second))
	s.Logger.Warn("scheduled run missed", "job", name, "due", latest, "missed", n)
	s.record(name, spec.String(), latest, schedule.Missed, nil, "", note)
	return nil
}
