package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/warehouse"
)

// RunSummary is a run as the ledger recorded it.
type RunSummary struct {
	ID          int64
	Command     string
	Status      string
	Environment string
	Started     time.Time
	Finished    *time.Time
	Host        string
	ExitCode    *int
	Error       *string
	Steps       int
	StepErrors  int64
}

// Duration is how long the run took (so far, if still running).
func (r RunSummary) Duration() time.Duration {
	if r.Finished == nil {
		return time.Since(r.Started)
	}
	return r.Finished.Sub(r.Started)
}

// runColumns are the columns scanRun reads, from ctl.run r and its steps s.
const runColumns = `r.run_id, r.command, r.status, r.environment, r.started_at, r.finished_at, r.host, r.exit_code, r.error,
	count(s.step_id), coalesce(sum(s.errors), 0)::bigint`

func scanRun(row pgx.CollectableRow) (RunSummary, error) {
	var r RunSummary
	err := row.Scan(&r.ID, &r.Command, &r.Status, &r.Environment, &r.Started, &r.Finished, &r.Host,
		&r.ExitCode, &r.Error, &r.Steps, &r.StepErrors)
	return r, err
}

// Recent returns the last limit runs, newest first.
func Recent(ctx context.Context, q warehouse.Querier, limit int) ([]RunSummary, error) {
	rows, err := q.Query(ctx, `SELECT `+runColumns+`
		FROM ctl.run r LEFT JOIN ctl.run_step s ON s.run_id = r.run_id
		GROUP BY r.run_id ORDER BY r.run_id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("reading recent runs: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanRun)
	if err != nil {
		return nil, fmt.Errorf("reading recent runs: %w", err)
	}
	return out, nil
}

// ErrNoRun says the ledger holds no run that matches.
var ErrNoRun = errors.New("no such run in the ledger")

// RunByID returns the run id, or an error wrapping ErrNoRun.
func RunByID(ctx context.Context, q warehouse.Querier, id int64) (RunSummary, error) {
	return oneRun(ctx, q, fmt.Sprintf("run %d", id), `WHERE r.run_id = $1`, id)
}

// LastRun returns the latest run of command (whatever its status), or an
// error wrapping ErrNoRun.
func LastRun(ctx context.Context, q warehouse.Querier, command string) (RunSummary, error) {
	return oneRun(ctx, q, "the last run of mim "+command, `WHERE r.command = $1`, command)
}

// oneRun reads the newest run that where (with arg) selects.
func oneRun(ctx context.Context, q warehouse.Querier, what, where string, arg any) (RunSummary, error) {
	rows, err := q.Query(ctx, `SELECT `+runColumns+`
		FROM ctl.run r LEFT JOIN ctl.run_step s ON s.run_id = r.run_id `+where+`
		GROUP BY r.run_id ORDER BY r.run_id DESC LIMIT 1`, arg)
	if err != nil {
		return RunSummary{}, fmt.Errorf("reading %s: %w", what, err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRun)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return RunSummary{}, fmt.Errorf("reading %s: %w", what, ErrNoRun)
	case err != nil:
		return RunSummary{}, fmt.Errorf("reading %s: %w", what, err)
	}
	return r, nil
}

// StepSummary is a step as the ledger recorded it.
type StepSummary struct {
	ID       int64
	Key      StepKey
	Status   string
	Started  time.Time
	Finished *time.Time
	Counts   Counts
	Error    *string
	// Seconds is the step's own time when it recorded one (detail.seconds):
	// a transform model's build, which finishes only at the commit.
	Seconds *float64
	// Detail is what the step recorded beside its counts (a JSON object).
	Detail json.RawMessage
}

// Duration is how long the step's own work took: its recorded seconds, or
// from its start to its end (zero while it runs).
func (s StepSummary) Duration() time.Duration {
	switch {
	case s.Seconds != nil:
		return time.Duration(*s.Seconds * float64(time.Second))
	case s.Finished != nil:
		return s.Finished.Sub(s.Started)
	}
	return 0
}

// Steps returns the steps of one run in the order they started.
func Steps(ctx context.Context, q warehouse.Querier, runID int64) ([]StepSummary, error) {
	rows, err := q.Query(ctx, `
		SELECT step_id, stage, source, instance, entity, status, started_at, finished_at,
		       rows_in, rows_new, rows_changed, rows_deleted, rows_unchanged, errors, error,
		       CASE WHEN jsonb_typeof(detail->'seconds') = 'number' THEN (detail->>'seconds')::float8 END, detail
		FROM ctl.run_step WHERE run_id = $1 ORDER BY step_id`, runID)
	if err != nil {
		return nil, fmt.Errorf("reading the steps of run %d: %w", runID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (StepSummary, error) {
		var s StepSummary
		c := &s.Counts
		err := row.Scan(&s.ID, &s.Key.Stage, &s.Key.Source, &s.Key.Instance, &s.Key.Entity, &s.Status,
			&s.Started, &s.Finished, &c.In, &c.New, &c.Changed, &c.Deleted, &c.Unchanged, &c.Errors, &s.Error, &s.Seconds, &s.Detail)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the steps of run %d: %w", runID, err)
	}
	return out, nil
}

// LastSuccess returns when a run of command last succeeded (zero if never).
func LastSuccess(ctx context.Context, q warehouse.Querier, command string) (time.Time, error) {
	var t *time.Time
	err := q.QueryRow(ctx, `SELECT max(finished_at) FROM ctl.run WHERE command = $1 AND status = 'succeeded'`, command).Scan(&t)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the last successful %s run: %w", command, err)
	}
	if t == nil {
		return time.Time{}, nil
	}
	return *t, nil
}

// StageTotal sums up the steps of one stage of a run.
type StageTotal struct {
	Stage string
	Steps int
	// ByStatus counts the steps by status.
	ByStatus map[string]int
	Counts   Counts
	// Started and Finished span the stage's steps (Finished nil while one
	// still runs).
	Started  time.Time
	Finished *time.Time
}

// Statuses lists the step counts by status in a fixed order ("65
// succeeded, 2 failed").
func (t StageTotal) Statuses() string {
	var parts []string
	for _, st := range []string{Succeeded, Partial, Failed, Refused, Skipped, Running} {
		if n := t.ByStatus[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	return strings.Join(parts, ", ")
}

// ByStage sums steps up by stage, in the order the stages first appear.
func ByStage(steps []StepSummary) []StageTotal {
	var out []StageTotal
	index := map[string]int{}
	for _, s := range steps {
		i, ok := index[s.Key.Stage]
		if !ok {
			i = len(out)
			index[s.Key.Stage] = i
			out = append(out, StageTotal{Stage: s.Key.Stage, ByStatus: map[string]int{}, Started: s.Started, Finished: s.Finished})
		}
		t := &out[i]
		t.Steps++
		t.ByStatus[s.Status]++
		t.Counts.In += s.Counts.In
		t.Counts.New += s.Counts.New
		t.Counts.Changed += s.Counts.Changed
		t.Counts.Deleted += s.Counts.Deleted
		t.Counts.Unchanged += s.Counts.Unchanged
		t.Counts.Errors += s.Counts.Errors
		if s.Started.Before(t.Started) {
			t.Started = s.Started
		}
		if s.Finished != nil && t.Finished != nil && s.Finished.After(*t.Finished) {
			t.Finished = s.Finished
		}
	}
	// A stage with a running step is still running.
	for i := range out {
		if out[i].ByStatus[Running] > 0 {
			out[i].Finished = nil
		}
	}
	return out
}

// LastStepSucceeded is the last run in which a step of stage on entity (a
// transform's model, an extract's entity) succeeded, or 0 when none did.
func LastStepSucceeded(ctx context.Context, q warehouse.Querier, stage, entity string) (int64, error) {
	var run int64
	err := q.QueryRow(ctx, `SELECT coalesce(max(run_id), 0) FROM ctl.run_step
		WHERE stage = $1 AND entity = $2 AND status = 'succeeded'`, stage, entity).Scan(&run)
	if err != nil {
		return 0, fmt.Errorf("reading the last run whose %s of %s succeeded: %w", stage, entity, err)
	}
	return run, nil
}
