package e2e_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/synth/synthworld"
	"github.com/mimwarehouse/mim/transform"
)

// world is the synthetic institution in a fresh warehouse (synthworld),
// with the e2e tests' own helpers.
type world struct{ *synthworld.World }

func newWorld(tb testing.TB, opts synth.Options) *world {
	tb.Helper()
	return &world{synthworld.New(tb, synthworld.Options{Synth: opts})}
}

// extract reads SITS, CMIS and every Moodle site, as `mim extract` does.
func (w *world) extract(tb testing.TB) { tb.Helper(); w.Extract(tb, true) }

// mapAndSet puts synth's course mappings in place, as after a rollover.
func (w *world) mapAndSet(tb testing.TB) { tb.Helper(); w.MapAndSet(tb, "e2e") }

// project loads the embedded models (projectWith adds files to them).
func project(tb testing.TB) *transform.Project {
	tb.Helper()
	p, err := transform.LoadEmbedded()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// count runs a query returning one number.
func count(tb testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	tb.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return int(n)
}

// rows runs a query and returns every row as text ("NULL" for NULL).
func rows(tb testing.TB, pool *pgxpool.Pool, sql string, args ...any) [][]string {
	tb.Helper()
	rs, err := pool.Query(context.Background(), sql, args...)
	if err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) ([]string, error) {
		vals, err := r.Values()
		row := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				row[i] = "NULL"
			} else {
				row[i] = fmt.Sprint(v)
			}
		}
		return row, err
	})
	if err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return out
}
