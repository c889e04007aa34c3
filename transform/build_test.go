package transform_test

import (
	"context"
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/transform"
)

// The view step on its own: a view whose columns change in a way CREATE OR
// REPLACE refuses (one dropped) is dropped and made again ("rebuilt"); a
// model that turns from a view into a table replaces it, and back.
func TestViewsAreRebuiltAndSwappedWithTables(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	r := raw{t, db.Pool}
	r.put("sits", "sits", "student", "1", "", map[string]any{"student_code": "1", "enrolment_status": "E"})
	files := maps.Clone(martFiles)
	run := func(what string) map[string]string {
		t.Helper()
		res, err := transform.Run(ctx, db.Pool, project(t, files), opts())
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		actions := map[string]string{}
		for _, m := range res.Models {
			actions[m.Model] = m.Action
		}
		return actions
	}
	if a := run("first build")["mart.status_view"]; a != "created" {
		t.Errorf("first build: the view %s", a)
	}
	files["marts/people/status_view.sql"] = "-- depends: mart.active_students\n-- materialized: view\n" +
		"SELECT count(*) AS students FROM mart.active_students"
	if a := run("a column dropped")["mart.status_view"]; a != "rebuilt" {
		t.Errorf("a column dropped: the view %s, want rebuilt", a)
	}
	if got := strings2(t, db.Pool, `SELECT students::text FROM mart.status_view`); !reflect.DeepEqual(got, []string{"1"}) {
		t.Errorf("the rebuilt view reads %v", got)
	}
	files["marts/people/status_view.sql"] = strings.Replace(files["marts/people/status_view.sql"], "materialized: view", "materialized: table", 1)
	if a := run("view to table")["mart.status_view"]; a != "rebuilt" {
		t.Errorf("view to table: %s, want rebuilt", a)
	}
	if got := strings2(t, db.Pool, `SELECT relkind::text FROM pg_class WHERE oid = 'mart.status_view'::regclass`); !reflect.DeepEqual(got, []string{"r"}) {
		t.Errorf("after view to table, the relation's kind: %v", got)
	}
	files["marts/people/status_view.sql"] = strings.Replace(files["marts/people/status_view.sql"], "materialized: table", "materialized: view", 1)
	if a := run("table to view")["mart.status_view"]; a != "created" {
		t.Errorf("table to view: %s, want created", a)
	}
	if got := strings2(t, db.Pool, `SELECT relkind::text FROM pg_class WHERE oid = 'mart.status_view'::regclass`); !reflect.DeepEqual(got, []string{"v"}) {
		t.Errorf("after table to view, the relation's kind: %v", got)
	}
}
