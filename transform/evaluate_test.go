package transform_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/transform"
)

// Evaluate rebuilds only the models between the replaced source and the
// target, as temporary tables, reading the unaffected models as built: the
// warehouse's own tables are left exactly as they were.
func TestEvaluateScopesAChainToReplacedRows(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	p := project(t, map[string]string{
		"staging/sits/person.sql": `-- description: people
SELECT * FROM (VALUES ('p1', 'Ada'), ('p2', 'Bea'), ('p3', 'Cy')) AS v(code, name)`,
		"intermediate/mapping/picked.sql": `-- depends: stg.person
-- description: people a mapping picks
SELECT m.course_idnumber, p.code, p.name FROM ctl.course_mapping m JOIN stg.person p ON p.code = m.sis_key WHERE m.active`,
		"marts/core/course_size.sql": `-- depends: int.picked
-- description: people per course
SELECT course_idnumber, count(*) AS people, string_agg(name, ',' ORDER BY name) AS names FROM int.picked GROUP BY 1`,
		"marts/core/everyone.sql": `-- depends: stg.person
-- description: not downstream of the mappings
SELECT count(*) AS n FROM stg.person`,
	})
	if _, err := db.Pool.Exec(ctx, `INSERT INTO ctl.course_mapping (instance, course_idnumber, sis_kind, sis_key, created_by, updated_by)
		VALUES ('main', 'C1', 'programme', 'p1', 't', 't'), ('main', 'C2', 'programme', 'p2', 't', 't')`); err != nil {
		t.Fatal(err)
	}
	if _, err := transform.Run(ctx, db.Pool, p, transform.Options{}); err != nil {
		t.Fatal(err)
	}

	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE scope_mapping ON COMMIT DROP AS
		SELECT * FROM ctl.course_mapping WHERE course_idnumber = 'C1';
		INSERT INTO scope_mapping (mapping_id, instance, course_idnumber, sis_kind, sis_key, active, created_by, updated_by)
		VALUES (-1, 'main', 'C1', 'programme', 'p3', true, 't', 't')`); err != nil {
		t.Fatal(err)
	}
	rel, err := transform.Evaluate(ctx, tx, p, "mart.course_size", map[string]string{"ctl.course_mapping": "pg_temp.scope_mapping"})
	if err != nil {
		t.Fatal(err)
	}
	if rel != transform.EvalRelation("mart.course_size") {
		t.Errorf("relation %s", rel)
	}
	var got []string
	rows, err := tx.Query(ctx, `SELECT course_idnumber || ':' || people || ':' || names FROM `+rel+` ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if strings.Join(got, " ") != "C1:2:Ada,Cy" {
		t.Errorf("evaluated %v, want C1 with Ada and Cy only", got)
	}
	// The built models are untouched, and the unrelated mart was not rebuilt.
	var built string
	if err := tx.QueryRow(ctx, `SELECT string_agg(course_idnumber || ':' || people, ' ' ORDER BY 1) FROM mart.course_size`).Scan(&built); err != nil {
		t.Fatal(err)
	}
	if built != "C1:1 C2:1" {
		t.Errorf("mart.course_size is %q after the evaluation", built)
	}
	var evalEveryone bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, transform.EvalRelation("mart.everyone")).Scan(&evalEveryone); err != nil {
		t.Fatal(err)
	}
	if evalEveryone {
		t.Error("a model that does not read the mappings was evaluated")
	}
	// Twice in one transaction works (the temporary tables are replaced).
	if _, err := transform.Evaluate(ctx, tx, p, "mart.course_size", map[string]string{"ctl.course_mapping": "pg_temp.scope_mapping"}); err != nil {
		t.Fatal(err)
	}
	if _, err := transform.Evaluate(ctx, tx, p, "mart.everyone", map[string]string{"ctl.course_mapping": "pg_temp.scope_mapping"}); err == nil ||
		!strings.Contains(err.Error(), "does not read ctl.course_mapping") {
		t.Errorf("a target that does not read the source: %v", err)
	}
	if _, err := transform.Evaluate(ctx, tx, p, "mart.course_size", map[string]string{"ctl.course_mapping": "x; DROP TABLE y"}); err == nil {
		t.Error("a replacement that is not a relation name was accepted")
	}
}
