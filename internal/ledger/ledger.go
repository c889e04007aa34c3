// Package ledger records what MIM did: one ctl.run row per changing command,
// one ctl.run_step row per stage, source and entity inside it, with counts,
// timings and errors. It is how an operator (and the status page, and the
// summary mail) answers "what happened last night".
package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Status values of runs and steps.
const (
	Running   = "running"
	Succeeded = "succeeded"
	Failed    = "failed"
	Refused   = "refused"
	Partial   = "partial"
	Skipped   = "skipped"
	Abandoned = "abandoned"
)

// writeTimeout bounds ledger writes made after the run's own context ended,
// so an interrupted run still records how it ended.
const writeTimeout = 10 * time.Second

// Run is one recorded run holding the warehouse run lock.
type Run struct {
	ID          int64
	Command     string
	Environment string
	Started     time.Time
	pool        *pgxpool.Pool
	lock        *warehouse.RunLock
	finished    bool
}

// Begin takes the warehouse run lock and records a new run. Runs left
// "running" by a process that died are marked abandoned first (holding the
// lock proves they are not running). The caller must call Finish.
func Begin(ctx context.Context, pool *pgxpool.Pool, command, environment, version string, args []string) (*Run, error) {
	lock, err := warehouse.AcquireRunLock(ctx, pool)
	if err != nil {
		var locked *warehouse.LockedError
		if errors.As(err, &locked) {
			locked.Holder = nameRunningRun(ctx, pool, locked.Holder)
		}
		return nil, err
	}
	host, _ := os.Hostname()
	if args == nil {
		args = []string{}
	}
	r := &Run{Command: command, Environment: environment, pool: pool, lock: lock}
	_, err = pool.Exec(ctx, `UPDATE ctl.run SET status = 'abandoned', finished_at = now(),
		error = 'the process ended without recording an outcome' WHERE status = 'running'`)
	if err == nil {
		_, err = pool.Exec(ctx, `UPDATE ctl.run_step SET status = 'failed', finished_at = now(),
			error = 'abandoned with its run' WHERE status = 'running'`)
	}
	if err == nil {
		err = pool.QueryRow(ctx, `INSERT INTO ctl.run (command, environment, host, pid, version, args)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING run_id, started_at`,
			command, environment, host, os.Getpid(), version, args).Scan(&r.ID, &r.Started)
	}
	if err != nil {
		lock.Release()
		return nil, fmt.Errorf("recording the start of run %s: %w", command, err)
	}
	return r, nil
}

// nameRunningRun adds to holder, the database session holding the run
// lock, the run it recorded as running.
func nameRunningRun(ctx context.Context, pool *pgxpool.Pool, holder string) string {
	var runID int64
	var command, host string
	var pid int
	var started time.Time
	err := pool.QueryRow(ctx, `SELECT run_id, command, host, pid, started_at FROM ctl.run
		WHERE status = 'running' ORDER BY run_id DESC LIMIT 1`).Scan(&runID, &command, &host, &pid, &started)
	if err != nil {
		return holder
	}
	run := fmt.Sprintf("run %d `mim %s` on %s pid %d, started %s", runID, command, host, pid, started.Format(time.RFC3339))
	if holder == "" || holder == warehouse.HolderUnknown {
		return run
	}
	return holder + "; " + run
}

// Finish records the run's outcome and releases the run lock. status is one
// of Succeeded, Failed, Refused or Partial; runErr, if any, is stored as text.
// It is safe to call more than once (later calls do nothing), so callers can
// defer a Failed finish and finish properly on the happy path.
func (r *Run) Finish(ctx context.Context, status string, exitCode int, runErr error) error {
	if r == nil || r.finished {
		return nil
	}
	r.finished = true
	defer r.lock.Release()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	err := write(ctx, r.pool, `UPDATE ctl.run SET status = $2, finished_at = now(), exit_code = $3, error = $4
		WHERE run_id = $1`, r.ID, status, exitCode, errText(runErr))
	if err == nil {
		err = write(ctx, r.pool, `UPDATE ctl.run_step SET status = 'failed', finished_at = now(),
			error = 'unfinished when its run ended' WHERE run_id = $1 AND status = 'running'`, r.ID)
	}
	if err != nil {
		return fmt.Errorf("recording the end of run %d: %w", r.ID, err)
	}
	return nil
}

// StepKey names a step: the stage and, where it applies, the source,
// instance and entity (or model, feed, plan) it worked on.
type StepKey struct {
	Stage    string
	Source   string
	Instance string
	Entity   string
}

// Counts are a step's row counts.
type Counts struct {
	In        int64 `json:"in"`
	New       int64 `json:"new"`
	Changed   int64 `json:"changed"`
	Deleted   int64 `json:"deleted"`
	Unchanged int64 `json:"unchanged"`
	Errors    int64 `json:"errors"`
}

// Step is one recorded step of a run.
type Step struct {
	ID      int64
	Key     StepKey
	Started time.Time
	pool    *pgxpool.Pool
	done    bool
}

// Step records the start of a step.
func (r *Run) Step(ctx context.Context, k StepKey) (*Step, error) {
	s := &Step{Key: k, pool: r.pool}
	err := r.pool.QueryRow(ctx, `INSERT INTO ctl.run_step (run_id, stage, source, instance, entity)
		VALUES ($1, $2, $3, $4, $5) RETURNING step_id, started_at`,
		r.ID, k.Stage, k.Source, k.Instance, k.Entity).Scan(&s.ID, &s.Started)
	if err != nil {
		return nil, fmt.Errorf("recording the start of step %s: %w", k, err)
	}
	return s, nil
}

func (k StepKey) String() string {
	s := k.Stage
	for _, p := range []string{k.Source, k.Instance, k.Entity} {
		if p != "" {
			s += "/" + p
		}
	}
	return s
}

// Finish records the step's outcome. detail (anything JSON-encodable, may be
// nil) is kept for the status page and the summary mail. Calling it twice
// does nothing the second time.
func (s *Step) Finish(ctx context.Context, status string, c Counts, detail any, stepErr error) error {
	if s == nil || s.done {
		return nil
	}
	s.done = true
	d := []byte("{}")
	if detail != nil {
		var err error
		if d, err = json.Marshal(detail); err != nil {
			return fmt.Errorf("encoding the detail of step %s: %w", s.Key, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	err := write(ctx, s.pool, `UPDATE ctl.run_step SET status = $2, finished_at = now(),
		rows_in = $3, rows_new = $4, rows_changed = $5, rows_deleted = $6, rows_unchanged = $7, errors = $8,
		detail = $9, error = $10 WHERE step_id = $1`,
		s.ID, status, c.In, c.New, c.Changed, c.Deleted, c.Unchanged, c.Errors, d, errText(stepErr))
	if err != nil {
		return fmt.Errorf("recording the end of step %s: %w", s.Key, err)
	}
	return nil
}

// write runs one of the ledger's idempotent updates. When the pool's
// connection died under it (a restart, a cut right after a stage's COMMIT)
// it is written once more from a fresh connection: what a stage did must be
// recorded even when the bookkeeping's own connection fails, or a committed
// transform would pass for a failed one.
func write(ctx context.Context, pool *pgxpool.Pool, sql string, args ...any) error {
	_, err := pool.Exec(ctx, sql, args...)
	if err == nil || ctx.Err() != nil {
		return err
	}
	conn, cerr := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if cerr != nil {
		return errors.Join(err, fmt.Errorf("and from a fresh connection: %w", cerr))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, rerr := conn.Exec(ctx, sql, args...); rerr != nil {
		return errors.Join(err, fmt.Errorf("and from a fresh connection: %w", rerr))
	}
	return nil
}

// Outcome is the status a step or run ends with given its error: Refused for
// a guard's refusal (an error with ExitCode 3), Failed for any other error.
func Outcome(err error) string {
	if err == nil {
		return Succeeded
	}
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) && ec.ExitCode() == 3 {
		return Refused
	}
	return Failed
}

func errText(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
