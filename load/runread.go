package load

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// ReadOfRun reads back what run runID landed of entity id in scopes: it
// returns the scopes, of those asked, that the run read completely, and
// calls each for every live record of those scopes (in scope order). A
// scope the run did not read completely (read by an earlier run, failed,
// never read) is left out: its rows are not what the source holds now.
// each's payload is only valid during the call.
func ReadOfRun(ctx context.Context, q warehouse.Querier, id extract.EntityID, runID int64, scopes []string,
	each func(scope, key string, payload []byte) error) (map[string]bool, error) {
	rows, err := q.Query(ctx, `SELECT scope FROM raw.scope_read
		WHERE source = $1 AND instance = $2 AND entity = $3 AND complete_run = $4 AND scope = ANY($5)`,
		id.Source, id.Instance, id.Entity, runID, scopes)
	if err != nil {
		return nil, fmt.Errorf("reading which scopes of %s run %d read completely: %w", id, runID, err)
	}
	read, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("reading which scopes of %s run %d read completely: %w", id, runID, err)
	}
	complete := make(map[string]bool, len(read))
	for _, s := range read {
		complete[s] = true
	}
	if len(read) == 0 {
		return complete, nil
	}
	rows, err = q.Query(ctx, `SELECT scope, key, payload::text FROM raw.record
		WHERE source = $1 AND instance = $2 AND entity = $3 AND scope = ANY($4) AND deleted_run IS NULL`, id.Source, id.Instance, id.Entity, read)
	if err != nil {
		return nil, fmt.Errorf("reading the records of %s that run %d landed: %w", id, runID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var scope, key string
		var payload []byte
		if err := rows.Scan(&scope, &key, &payload); err != nil {
			return nil, fmt.Errorf("reading the records of %s that run %d landed: %w", id, runID, err)
		}
		if err := each(scope, key, payload); err != nil {
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the records of %s that run %d landed: %w", id, runID, err)
	}
	return complete, nil
}
