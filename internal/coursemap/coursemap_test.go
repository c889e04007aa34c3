package coursemap_test

import (
	"context"
	"slices"
	"testing"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/internal/coursemap"
	"github.com/mimwarehouse/mim/internal/mapping"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/transform"
)

// The preview is what the night will do: the course's marts built from the
// scoped models hold exactly the rows a full transform then builds for the
// course, and the export's view of them is the same before and after.
func TestPreviewIsWhatTheNightDoes(t *testing.T) {
	w := newBenchWorld(t)
	ctx := context.Background()
	pool := w.DB.Pool
	ed := coursemap.New(pool, coursemap.Options{Knowledge: wire.Knowledge(w.Cfg), Project: w.project, Export: feeds.NewPreviewer(wire.Feeds(w.Cfg))})
	var site, course, occ string
	if err := pool.QueryRow(ctx, `SELECT m.instance, m.course_idnumber FROM ctl.course_mapping m
		JOIN mart.exp_ims_membership t ON t.instance = m.instance AND t.course_idnumber = m.course_idnumber
		WHERE m.active GROUP BY 1, 2 ORDER BY count(*) DESC, 2 LIMIT 1`).Scan(&site, &course); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT sis_key FROM mart.mapping_candidate WHERE sis_kind = 'module_occurrence'
		AND sis_key NOT IN (SELECT sis_key FROM ctl.course_mapping WHERE instance = $1 AND course_idnumber = $2)
		ORDER BY students DESC, sis_key LIMIT 1`, site, course).Scan(&occ); err != nil {
		t.Fatal(err)
	}
	add := mapping.Change{Action: mapping.ActionAdd, Kind: "module_occurrence", Key: occ, Roles: []string{"student", "editingteacher"}}
	before, err := ed.Preview(ctx, site, course, add)
	if err != nil {
		t.Fatal(err)
	}
	if before.Export.Adds == 0 {
		t.Fatalf("adding occurrence %s to %s previews no adds: %+v", occ, course, *before.Export)
	}
	applied, err := ed.Apply(ctx, site, course, add, "test", nil)
	if err != nil || !applied.Applied {
		t.Fatalf("apply: %v", err)
	}
	// The night: every model built in full.
	if _, err := w.Transform(t, w.project); err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	night, err := feeds.PreviewCourse(ctx, tx, wire.Feeds(w.Cfg), site, course, "mart.exp_ims_membership")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*feeds.CoursePreview{before.Export, applied.Export} {
		if p.Adds != night.Adds || p.Drops != night.Drops || p.Changes != night.Changes || p.Target != night.Target || p.Held != night.Held {
			t.Errorf("preview %+v, the night's export %+v", *p, *night)
		}
	}
	// Row for row, the scoped build is the full build's course.
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE scope ON COMMIT DROP AS SELECT * FROM ctl.course_mapping WHERE instance = $1 AND course_idnumber = $2`,
		site, course); err != nil {
		t.Fatal(err)
	}
	rel, err := transform.Evaluate(ctx, tx, w.project, "mart.exp_ims_membership", map[string]string{"ctl.course_mapping": "pg_temp.scope"})
	if err != nil {
		t.Fatal(err)
	}
	rows := func(sql string, args ...any) []string {
		r, err := tx.Query(ctx, sql, args...)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for r.Next() {
			var s string
			if err := r.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	const row = `SELECT concat_ws('|', instance, course_idnumber, user_idnumber, roletype, status, timeframe_begin, timeframe_end, role) FROM `
	scoped := rows(row + rel + ` ORDER BY 1`)
	full := rows(row+`mart.exp_ims_membership WHERE instance = $1 AND course_idnumber = $2 ORDER BY 1`, site, course)
	if len(full) == 0 || !slices.Equal(scoped, full) {
		t.Errorf("the scoped build has %d rows, the full build %d for %s; first: %v / %v", len(scoped), len(full), course, head(scoped), head(full))
	}
}

func head(s []string) []string { return s[:min(len(s), 3)] }
