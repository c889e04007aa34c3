package ledger

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/warehouse"
)

// The ledger's totals over every run it holds: what /metrics reads at
// scrape time.

// RunCount is how many runs of a command have a status.
type RunCount struct {
	Command, Status string
	Runs            int64
}

// RunCounts counts the runs by command and status.
func RunCounts(ctx context.Context, q warehouse.Querier) ([]RunCount, error) {
	rows, err := q.Query(ctx, `SELECT command, status, count(*) FROM ctl.run GROUP BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("reading the runs by command and status: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RunCount, error) {
		var c RunCount
		err := r.Scan(&c.Command, &c.Status, &c.Runs)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the runs by command and status: %w", err)
	}
	return out, nil
}

// StageOutcome is how many finished runs ended a stage with an outcome for
// one site (or source): succeeded, partial, failed, refused or skipped,
// the worst of the stage's steps for that site.
type StageOutcome struct {
	Stage, Site, Outcome string
	Runs                 int64
}

// StageValue is one figure of a stage: the Unix time it last ended
// succeeded or partial, or how many seconds it took in the last run that
// had it. The whole `mim run` is the stage "run".
type StageValue struct {
	Stage string
	Value float64
}

// StageStats are the stages' outcomes, last successes and last durations.
type StageStats struct {
	Outcomes    []StageOutcome
	LastSuccess []StageValue
	LastSeconds []StageValue
}

// stageSQL gives each stage of each finished run one outcome per site (the
// worst of its steps), its last success and its last duration.
const stageSQL = `
WITH task AS (
	SELECT s.run_id, s.stage, s.instance AS site,
		CASE WHEN bool_or(s.status IN ('failed', 'running')) THEN 'failed'
		     WHEN bool_or(s.status = 'refused') THEN 'refused'
		     WHEN bool_or(s.status = 'partial') THEN 'partial'
		     WHEN bool_and(s.status = 'skipped') THEN 'skipped'
		     ELSE 'succeeded' END AS outcome,
		min(s.started_at) FILTER (WHERE s.status <> 'skipped') AS started,
		max(s.finished_at) FILTER (WHERE s.status <> 'skipped') AS finished
	FROM ctl.run_step s JOIN ctl.run r ON r.run_id = s.run_id
	WHERE r.status <> 'running'
	GROUP BY 1, 2, 3
), stage_run AS (
	SELECT run_id, stage, bool_and(outcome IN ('succeeded', 'partial')) AS ok, min(started) AS started, max(finished) AS finished
	FROM task GROUP BY 1, 2
)
SELECT 'runs', stage, site, outcome, count(*)::float8 FROM task GROUP BY 2, 3, 4
UNION ALL
SELECT 'success', stage, '', '', extract(epoch FROM max(finished) FILTER (WHERE ok))::float8
FROM stage_run GROUP BY stage HAVING bool_or(ok AND finished IS NOT NULL)
UNION ALL
(SELECT DISTINCT ON (stage) 'seconds', stage, '', '', extract(epoch FROM finished - started)::float8
 FROM stage_run WHERE started IS NOT NULL AND finished IS NOT NULL ORDER BY stage, run_id DESC)
`

// runSQL is the whole mim run's last success and last duration.
const runSQL = `
SELECT 'success', 'run', '', '', extract(epoch FROM max(finished_at))::float8 FROM ctl.run WHERE command = 'run' AND status = 'succeeded'
HAVING max(finished_at) IS NOT NULL
UNION ALL
(SELECT 'seconds', 'run', '', '', extract(epoch FROM finished_at - started_at)::float8 FROM ctl.run
 WHERE command = 'run' AND finished_at IS NOT NULL ORDER BY run_id DESC LIMIT 1)
`

// Stages reads the stages' outcomes per site, and each stage's (and the
// whole mim run's) last success and last duration.
func Stages(ctx context.Context, q warehouse.Querier) (StageStats, error) {
	var st StageStats
	for _, sql := range []string{stageSQL, runSQL} {
		rows, err := q.Query(ctx, sql)
		if err != nil {
			return st, fmt.Errorf("reading the stages of runs: %w", err)
		}
		var kind, stage, site, outcome string
		var v float64
		_, err = pgx.ForEachRow(rows, []any{&kind, &stage, &site, &outcome, &v}, func() error {
			switch kind {
			case "runs":
				st.Outcomes = append(st.Outcomes, StageOutcome{Stage: stage, Site: site, Outcome: outcome, Runs: int64(v)})
			case "success":
				st.LastSuccess = append(st.LastSuccess, StageValue{Stage: stage, Value: v})
			case "seconds":
				st.LastSeconds = append(st.LastSeconds, StageValue{Stage: stage, Value: v})
			}
			return nil
		})
		if err != nil {
			return st, fmt.Errorf("reading the stages of runs: %w", err)
		}
	}
	return st, nil
}

// ExtractTotal sums the finished extract steps of one entity of one source
// instance over every run.
type ExtractTotal struct {
	Source, Instance, Entity string
	Counts                   Counts
}

// ExtractTotals sums the finished extract steps by source, instance and
// entity.
func ExtractTotals(ctx context.Context, q warehouse.Querier) ([]ExtractTotal, error) {
	rows, err := q.Query(ctx, `
		SELECT source, instance, entity, sum(rows_in)::bigint, sum(rows_new)::bigint, sum(rows_changed)::bigint,
		       sum(rows_deleted)::bigint, sum(errors)::bigint
		FROM ctl.run_step WHERE stage = 'extract' AND entity <> '' AND finished_at IS NOT NULL
		GROUP BY 1, 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("reading the extract steps: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ExtractTotal, error) {
		var t ExtractTotal
		c := &t.Counts
		err := r.Scan(&t.Source, &t.Instance, &t.Entity, &c.In, &c.New, &c.Changed, &c.Deleted, &c.Errors)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the extract steps: %w", err)
	}
	return out, nil
}
