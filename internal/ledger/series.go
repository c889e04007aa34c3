package ledger

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Series over the last runs, for charts: each point is an x label (a run
// id), a series name and a value, in x order.

// SeriesPoint is one value of one series at one x.
type SeriesPoint struct {
	X, Series string
	Value     float64
}

// ExtractRecordsPerRun is, for each of the last runs that extracted, the
// records each source read.
func ExtractRecordsPerRun(ctx context.Context, q warehouse.Querier, runs int) ([]SeriesPoint, error) {
	return series(ctx, q, "the records read per run", `
		SELECT r.run_id::text, s.source, sum(s.rows_in)::float8
		FROM ctl.run r JOIN ctl.run_step s ON s.run_id = r.run_id
		WHERE s.stage = 'extract' AND s.entity <> ''
		  AND r.run_id IN (SELECT DISTINCT run_id FROM ctl.run_step WHERE stage = 'extract' ORDER BY run_id DESC LIMIT $1)
		GROUP BY 1, 2, r.run_id ORDER BY r.run_id`, runs)
}

// ExtractChangesPerRun is, for each of the last runs that extracted, the
// records each source found new, changed or deleted.
func ExtractChangesPerRun(ctx context.Context, q warehouse.Querier, runs int) ([]SeriesPoint, error) {
	return series(ctx, q, "the records changed per run", `
		SELECT r.run_id::text, s.source, sum(s.rows_new + s.rows_changed + s.rows_deleted)::float8
		FROM ctl.run r JOIN ctl.run_step s ON s.run_id = r.run_id
		WHERE s.stage = 'extract' AND s.entity <> ''
		  AND r.run_id IN (SELECT DISTINCT run_id FROM ctl.run_step WHERE stage = 'extract' ORDER BY run_id DESC LIMIT $1)
		GROUP BY 1, 2, r.run_id ORDER BY r.run_id`, runs)
}

// RunMinutes is how many minutes each of the last finished runs of the
// stage commands (run, extract, transform, export, groups) took, by command.
func RunMinutes(ctx context.Context, q warehouse.Querier, runs int) ([]SeriesPoint, error) {
	return series(ctx, q, "the durations of runs", `
		SELECT run_id::text, command, extract(epoch FROM finished_at - started_at)::float8 / 60
		FROM (SELECT * FROM ctl.run WHERE finished_at IS NOT NULL AND command IN ('run', 'extract', 'transform', 'export', 'groups')
		      ORDER BY run_id DESC LIMIT $1) r
		ORDER BY run_id`, runs)
}

func series(ctx context.Context, q warehouse.Querier, what, sql string, runs int) ([]SeriesPoint, error) {
	rows, err := q.Query(ctx, sql, runs)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SeriesPoint, error) {
		var p SeriesPoint
		err := r.Scan(&p.X, &p.Series, &p.Value)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	return out, nil
}
