package synth

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// MappingsCSVHeader is the header WriteMappingsCSV writes: the columns `mim
// mappings import` reads (internal/mapping.CSVHeader), in its order.
var MappingsCSVHeader = []string{"instance", "course_idnumber", "sis_kind", "sis_key", "academic_year", "section", "course_year",
	"min_reg_status", "roles", "group_sync", "active"}

// WriteMappingsCSV writes mappings as a CSV file `mim mappings import` takes:
// roles separated by ';', booleans as true/false, section and course_year
// empty.
func WriteMappingsCSV(w io.Writer, ms []Mapping) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(MappingsCSVHeader); err != nil {
		return err
	}
	for _, m := range ms {
		if err := cw.Write([]string{m.Instance, m.CourseIDNumber, m.SISKind, m.SISKey, m.AcademicYear, "", "",
			m.MinRegStatus, strings.Join(m.Roles, ";"), strconv.FormatBool(m.GroupSync), strconv.FormatBool(m.Active)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// MappingResult is what InsertMappings did.
type MappingResult struct {
	Created, Updated, Unchanged int
}

// InsertMappings puts the mappings into ctl.course_mapping in one
// transaction (origin "synth", created_by and updated_by by), recording a
// ctl.course_mapping_event for each mapping created or changed. A mapping
// already there (same unique key) is updated to match; one that already
// matches is left alone, so running it twice changes nothing the second time.
func InsertMappings(ctx context.Context, pool *pgxpool.Pool, ms []Mapping, by string) (MappingResult, error) {
	var res MappingResult
	tx, err := pool.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("inserting course mappings: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE synth_mapping (instance text, course_idnumber text, sis_kind text, sis_key text,
		academic_year text, min_reg_status text, roles text[], active boolean, group_sync boolean) ON COMMIT DROP`); err != nil {
		return res, fmt.Errorf("inserting course mappings: %w", err)
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"synth_mapping"},
		[]string{"instance", "course_idnumber", "sis_kind", "sis_key", "academic_year", "min_reg_status", "roles", "active", "group_sync"},
		pgx.CopyFromSlice(len(ms), func(i int) ([]any, error) {
			m := ms[i]
			return []any{m.Instance, m.CourseIDNumber, m.SISKind, m.SISKey, m.AcademicYear, m.MinRegStatus, m.Roles, m.Active, m.GroupSync}, nil
		}))
	if err != nil {
		return res, fmt.Errorf("inserting course mappings: copying: %w", err)
	}
	rows, err := tx.Query(ctx, `
		WITH up AS (
		  INSERT INTO ctl.course_mapping AS m (instance, course_idnumber, sis_kind, sis_key, academic_year, min_reg_status,
		         roles, active, group_sync, origin, created_by, updated_by)
		  SELECT instance, course_idnumber, sis_kind, sis_key, academic_year, min_reg_status, roles, active, group_sync,
		         'synth', $1, $1
		  FROM synth_mapping
		  ON CONFLICT (instance, course_idnumber, sis_kind, sis_key, academic_year, section, course_year) DO UPDATE
		     SET min_reg_status = EXCLUDED.min_reg_status, roles = EXCLUDED.roles, active = EXCLUDED.active,
		         group_sync = EXCLUDED.group_sync, updated_at = now(), updated_by = EXCLUDED.updated_by
		     WHERE (m.min_reg_status, m.roles, m.active, m.group_sync)
		           IS DISTINCT FROM (EXCLUDED.min_reg_status, EXCLUDED.roles, EXCLUDED.active, EXCLUDED.group_sync)
		  RETURNING m.mapping_id, m.instance, m.course_idnumber, m.sis_key, (m.xmax = 0) AS created
		)
		INSERT INTO ctl.course_mapping_event (mapping_id, instance, course_idnumber, action, by, detail)
		SELECT mapping_id, instance, course_idnumber, CASE WHEN created THEN 'create' ELSE 'update' END, $1,
		       jsonb_build_object('origin', 'synth', 'sis_key', sis_key)
		FROM up
		RETURNING action`, by)
	if err != nil {
		return res, fmt.Errorf("inserting course mappings: %w", err)
	}
	for rows.Next() {
		var action string
		if err := rows.Scan(&action); err != nil {
			return res, err
		}
		if action == "create" {
			res.Created++
		} else {
			res.Updated++
		}
	}
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("inserting course mappings: %w", err)
	}
	res.Unchanged = len(ms) - res.Created - res.Updated
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("inserting course mappings: committing: %w", err)
	}
	return res, nil
}
