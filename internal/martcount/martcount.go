// Package martcount records, inside the transform's transaction, what the
// marts said on each run: the enrolment drift per site and kind, and the
// rows of each data-quality finding per site, in ctl.mart_count. The marts
// hold only the last night; these counts are what charts of drift and
// data quality over time read (the Superset dashboard, Grafana).
package martcount

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/transform"
)

// HookName is the hook's name in the transform's report and ledger.
const HookName = "mart counts over time"

// Hook returns the transform hook that runs Record after the marts, under
// ledger run runID. A transform that rolls back records nothing.
func Hook(runID int64) transform.Hook {
	return transform.Hook{
		Name:  HookName,
		After: "marts",
		Run: func(ctx context.Context, tx pgx.Tx) (string, error) {
			return Record(ctx, tx, runID)
		},
	}
}

// Record counts mart.enrolment_drift by site and kind and every mart.dq_*
// by site (or as a whole, for findings that belong to no site) into
// ctl.mart_count under runID, and says how many counts it wrote.
func Record(ctx context.Context, tx pgx.Tx, runID int64) (string, error) {
	var n int64
	add := func(relation, sql string) error {
		tag, err := tx.Exec(ctx, `INSERT INTO ctl.mart_count (run_id, relation, instance, kind, rows) `+sql+`
			ON CONFLICT (run_id, relation, instance, kind) DO UPDATE SET rows = EXCLUDED.rows, counted_at = now()`, runID, relation)
		if err != nil {
			return fmt.Errorf("counting %s: %w", relation, err)
		}
		n += tag.RowsAffected()
		return nil
	}
	var drift bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('mart.enrolment_drift') IS NOT NULL`).Scan(&drift); err != nil {
		return "", err
	}
	if drift {
		if err := add("mart.enrolment_drift", `SELECT $1, $2, instance, kind, count(*) FROM mart.enrolment_drift GROUP BY instance, kind`); err != nil {
			return "", err
		}
	}
	rows, err := tx.Query(ctx, `
		SELECT c.relname, EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'instance' AND NOT a.attisdropped)
		FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
		WHERE s.nspname = 'mart' AND c.relname LIKE 'dq\_%' AND c.relkind IN ('r', 'v', 'm', 'p')
		ORDER BY 1`)
	if err != nil {
		return "", fmt.Errorf("listing the data-quality marts: %w", err)
	}
	type finding struct {
		name        string
		perInstance bool
	}
	findings, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (finding, error) {
		var f finding
		err := r.Scan(&f.name, &f.perInstance)
		return f, err
	})
	if err != nil {
		return "", fmt.Errorf("listing the data-quality marts: %w", err)
	}
	for _, f := range findings {
		rel := pgx.Identifier{"mart", f.name}.Sanitize()
		sql := `SELECT $1, $2, '', '', count(*) FROM ` + rel
		if f.perInstance {
			sql = `SELECT $1, $2, coalesce(instance, ''), '', count(*) FROM ` + rel + ` GROUP BY 3`
		}
		if err := add("mart."+f.name, sql); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d counts of %d marts recorded", n, len(findings)+1), nil
}
