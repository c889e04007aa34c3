// Package ledgertest is the run ledger's test support, owned by the ledger
// as moodletest is Moodle's: tests of other packages count and read runs
// and steps, and seed back-dated runs, without naming the ledger's tables.
// Conditions and expressions are SQL over the columns of a run (run_id,
// command, status, environment, host, pid, version, args, started_at,
// finished_at, exit_code, error) or of a step (step_id, run_id, stage,
// source, instance, entity, status, started_at, finished_at, rows_in,
// rows_new, rows_changed, rows_deleted, errors, detail, error).
package ledgertest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/warehouse"
)

// where prefixes a non-empty condition with WHERE.
func where(cond string) string {
	if cond == "" {
		return ""
	}
	return " WHERE " + cond
}

// CountRuns returns how many runs satisfy cond; an empty cond counts every
// run.
func CountRuns(tb testing.TB, q warehouse.Querier, cond string, args ...any) int64 {
	tb.Helper()
	return scan[int64](tb, q, `SELECT count(*) FROM ctl.run`+where(cond), args...)
}

// CountSteps returns how many steps satisfy cond; an empty cond counts every
// step.
func CountSteps(tb testing.TB, q warehouse.Querier, cond string, args ...any) int64 {
	tb.Helper()
	return scan[int64](tb, q, `SELECT count(*) FROM ctl.run_step`+where(cond), args...)
}

// RunText evaluates expr, a text expression (aggregates allowed), over the
// runs that satisfy cond, followed by order (e.g. "ORDER BY run_id DESC
// LIMIT 1", or ""). The test fails if there is no row or the value is
// NULL.
func RunText(tb testing.TB, q warehouse.Querier, expr, cond, order string, args ...any) string {
	tb.Helper()
	return scan[string](tb, q, `SELECT `+expr+` FROM ctl.run`+where(cond)+" "+order, args...)
}

// StepText evaluates expr, a text expression (aggregates allowed), over the
// steps that satisfy cond. The test fails if there is no row or the value
// is NULL.
func StepText(tb testing.TB, q warehouse.Querier, expr, cond string, args ...any) string {
	tb.Helper()
	return scan[string](tb, q, `SELECT `+expr+` FROM ctl.run_step`+where(cond), args...)
}

func scan[T any](tb testing.TB, q warehouse.Querier, sql string, args ...any) T {
	tb.Helper()
	var v T
	if err := q.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		tb.Fatalf("run ledger: %s: %v", sql, err)
	}
	return v
}

// Past is a finished run of the past, for fixtures of what the ledger
// shows about earlier nights.
type Past struct {
	Command, Status, Host, Version string
	ExitCode                       int
	// Ago is how long before now the run started; Took how long it ran.
	Ago, Took time.Duration
}

// AddPast records p in the ledger (environment "test", pid 1), its times
// counted back from the database's now(), and returns its run id.
func AddPast(tb testing.TB, q warehouse.Querier, p Past) int64 {
	tb.Helper()
	return scan[int64](tb, q, `INSERT INTO ctl.run (command, status, environment, host, pid, version, started_at, finished_at, exit_code)
		VALUES ($1, $2, 'test', $3, 1, $4, now() - make_interval(secs => $5), now() - make_interval(secs => $5) + make_interval(secs => $6), $7)
		RETURNING run_id`, p.Command, p.Status, p.Host, p.Version, p.Ago.Seconds(), p.Took.Seconds(), p.ExitCode)
}

// Night is a run Nights recorded.
type Night struct {
	ID      int64
	Started time.Time
}

// Nights records n succeeded runs ("run", host "h", version "v"), one a
// day: the g-th started g days ago and took 7 minutes. Each run gets steps
// succeeded steps of one second, of moodle/main entities e1, e2, ...: every
// third an extract step, the others transform steps, step s with 1000+s
// rows in and s new. It returns the runs, newest first.
func Nights(tb testing.TB, q warehouse.Querier, n, steps int) []Night {
	tb.Helper()
	rows, err := q.Query(context.Background(), `WITH r AS (
		  INSERT INTO ctl.run (command, status, environment, host, pid, version, started_at, finished_at, exit_code)
		  SELECT 'run', 'succeeded', 'test', 'h', 1, 'v', now() - make_interval(days => g), now() - make_interval(days => g) + interval '7 minutes', 0
		  FROM generate_series(1, $1::int) g
		  RETURNING run_id, started_at
		), s AS (
		  INSERT INTO ctl.run_step (run_id, stage, source, instance, entity, status, started_at, finished_at, rows_in, rows_new)
		  SELECT r.run_id, CASE WHEN s % 3 = 0 THEN 'extract' ELSE 'transform' END, 'moodle', 'main', 'e' || s, 'succeeded',
		         r.started_at, r.started_at + interval '1 second', 1000 + s, s
		  FROM r, generate_series(1, $2::int) s
		)
		SELECT run_id, started_at FROM r ORDER BY started_at DESC`, n, steps)
	if err != nil {
		tb.Fatalf("recording %d past nights: %v", n, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Night])
	if err != nil {
		tb.Fatalf("recording %d past nights: %v", n, err)
	}
	return out
}
