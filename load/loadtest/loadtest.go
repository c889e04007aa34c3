// Package loadtest is the raw store's test support, owned by the loader as
// moodletest is Moodle's: tests of other packages read what the loader
// landed and seed fixture records through it, without naming the store's
// tables. Conditions and expressions are SQL over a record's columns:
// source, instance, entity, key, scope, payload (jsonb), hash, first_run,
// changed_run, seen_run, deleted_run (NULL while the record is live).
package loadtest

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/load"
)

// where prefixes a non-empty condition with WHERE.
func where(cond string) string {
	if cond == "" {
		return ""
	}
	return " WHERE " + cond
}

// Count returns how many records (live or deleted) satisfy cond; an empty
// cond counts every record.
func Count(tb testing.TB, q warehouse.Querier, cond string, args ...any) int64 {
	tb.Helper()
	return count(tb, q, `SELECT count(*) FROM raw.record`+where(cond), args...)
}

// HistoryCount returns how many earlier versions of records (the history
// the loader keeps of changed and deleted records) satisfy cond.
func HistoryCount(tb testing.TB, q warehouse.Querier, cond string, args ...any) int64 {
	tb.Helper()
	return count(tb, q, `SELECT count(*) FROM raw.record_history`+where(cond), args...)
}

// Live returns how many live records entity id holds.
func Live(tb testing.TB, q warehouse.Querier, id extract.EntityID) int64 {
	tb.Helper()
	return Count(tb, q, `source = $1 AND instance = $2 AND entity = $3 AND deleted_run IS NULL`,
		id.Source, id.Instance, id.Entity)
}

// Text evaluates expr, a text expression (aggregates allowed, system
// columns such as xmin too), over the records that satisfy cond. The test fails if the
// query fails, finds no row, or the value is NULL.
func Text(tb testing.TB, q warehouse.Querier, expr, cond string, args ...any) string {
	tb.Helper()
	sql := `SELECT ` + expr + ` FROM raw.record` + where(cond)
	var s string
	if err := q.QueryRow(context.Background(), sql, args...).Scan(&s); err != nil {
		tb.Fatalf("raw store: %s: %v", sql, err)
	}
	return s
}

// Lines evaluates expr, a text expression, for each record that satisfies
// cond, in the order order gives (e.g. "entity, key"; "" for any order).
func Lines(tb testing.TB, q warehouse.Querier, expr, cond, order string, args ...any) []string {
	tb.Helper()
	sql := `SELECT ` + expr + ` FROM raw.record` + where(cond)
	if order != "" {
		sql += " ORDER BY " + order
	}
	rows, err := q.Query(context.Background(), sql, args...)
	if err != nil {
		tb.Fatalf("raw store: %s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		tb.Fatalf("raw store: %s: %v", sql, err)
	}
	return out
}

func count(tb testing.TB, q warehouse.Querier, sql string, args ...any) int64 {
	tb.Helper()
	var n int64
	if err := q.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		tb.Fatalf("raw store: %s: %v", sql, err)
	}
	return n
}

// Record is a fixture record: its payload is JSON, landed as is.
type Record struct {
	ID      extract.EntityID
	Key     string
	Scope   string
	Payload []byte
	// Run is the record's first, changed and seen run; 0 means run 1.
	Run int64
}

// Put lands r as a live record, as if run r.Run had extracted it: its hash
// is the SHA-256 of the payload. A record already held under r's key is
// replaced (and live again).
func Put(tb testing.TB, q warehouse.Querier, r Record) {
	tb.Helper()
	run := r.Run
	if run == 0 {
		run = 1
	}
	h := sha256.Sum256(r.Payload)
	_, err := q.Exec(context.Background(), `INSERT INTO raw.record (source, instance, entity, key, scope, payload, hash, first_run, changed_run, seen_run)
		VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7, $8, $8, $8)
		ON CONFLICT (source, instance, entity, key) DO UPDATE SET payload = EXCLUDED.payload, hash = EXCLUDED.hash, deleted_run = NULL`,
		r.ID.Source, r.ID.Instance, r.ID.Entity, r.Key, r.Scope, string(r.Payload), h[:], run)
	if err != nil {
		tb.Fatalf("landing fixture record %s key %q: %v", r.ID, r.Key, err)
	}
}

// Copy lands recs as Put would, in one COPY and in the order given: for a
// benchmark's large fixtures. Their keys must not be held yet.
func Copy(tb testing.TB, pool *pgxpool.Pool, recs []Record) {
	tb.Helper()
	i := 0
	_, err := pool.CopyFrom(context.Background(), pgx.Identifier{"raw", "record"}, load.CopyColumns,
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(recs) {
				return nil, nil
			}
			r := recs[i]
			i++
			run := r.Run
			if run == 0 {
				run = 1
			}
			h := sha256.Sum256(r.Payload)
			return []any{r.ID.Source, r.ID.Instance, r.ID.Entity, r.Key, r.Scope, string(r.Payload), h[:], run, run, run}, nil
		}))
	if err != nil {
		tb.Fatalf("copying %d fixture records: %v", len(recs), err)
	}
}

// MarkDeleted marks key of entity id deleted by run, as the loader does
// when a completely read scope no longer holds it.
func MarkDeleted(tb testing.TB, q warehouse.Querier, id extract.EntityID, key string, run int64) {
	tb.Helper()
	_, err := q.Exec(context.Background(), `UPDATE raw.record SET deleted_run = $5
		WHERE (source, instance, entity, key) = ($1, $2, $3, $4)`, id.Source, id.Instance, id.Entity, key, run)
	if err != nil {
		tb.Fatalf("marking %s key %q deleted: %v", id, key, err)
	}
}

// Analyze vacuums and analyzes the records' table, so that a benchmark
// over freshly copied records plans as a settled warehouse would.
func Analyze(tb testing.TB, q warehouse.Querier) {
	tb.Helper()
	if _, err := q.Exec(context.Background(), `VACUUM ANALYZE raw.record`); err != nil {
		tb.Fatalf("analyzing the raw store: %v", err)
	}
}

// Size is the records' table's size on disk with its indexes and toast,
// as PostgreSQL prints it ("12 MB").
func Size(tb testing.TB, q warehouse.Querier) string {
	tb.Helper()
	var s string
	if err := q.QueryRow(context.Background(), `SELECT pg_size_pretty(pg_total_relation_size('raw.record'))`).Scan(&s); err != nil {
		tb.Fatalf("sizing the raw store: %v", err)
	}
	return s
}
