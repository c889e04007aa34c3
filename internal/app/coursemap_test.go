package app_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/app"
	"github.com/mimwarehouse/mim/internal/coursemap"
	"github.com/mimwarehouse/mim/internal/demo"
	"github.com/mimwarehouse/mim/internal/mapping"
	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/internal/wire"
)

// staffWorld is the synthetic institution after one night, with the
// course editor staff changes go through.
type staffWorld struct {
	*world
	e      *app.Env
	editor *coursemap.Service
}

func newStaffWorld(t *testing.T) *staffWorld {
	t.Helper()
	w := newWorld(t, demo.Environment)
	e, out := w.env(t, w.sites)
	res, err := app.RunPipeline(context.Background(), e, app.RunOptions{Progress: "off"})
	if err != nil || res.Status() != "succeeded" {
		t.Fatalf("night 1: %v\n%s", err, out.String())
	}
	cfg, err := e.Config()
	if err != nil {
		t.Fatal(err)
	}
	ed, err := wire.CourseEditor(cfg, w.db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	return &staffWorld{world: w, e: e, editor: ed}
}

// busiest is the main-site course with the most published students, and
// its one active mapping.
func (w *staffWorld) busiest(t *testing.T) (string, mapping.Mapping, int64) {
	t.Helper()
	var course string
	var students int64
	if err := w.db.Pool.QueryRow(context.Background(), `SELECT p.course_idnumber, count(*) FROM ctl.published_membership p
		WHERE p.instance = 'main' AND p.status = 1 AND p.roletype = '01'
		  AND (SELECT count(*) FROM ctl.course_mapping m WHERE m.instance = p.instance AND m.course_idnumber = p.course_idnumber AND m.active) = 1
		GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1`).Scan(&course, &students); err != nil {
		t.Fatal(err)
	}
	ms, err := mapping.List(context.Background(), w.db.Pool, mapping.Filter{Instance: "main", Course: course})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Active {
			return course, m, students
		}
	}
	t.Fatalf("course %s has no active mapping", course)
	return "", mapping.Mapping{}, 0
}

func (w *staffWorld) count(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := w.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Removing the mapping that feeds a course's students is previewed as
// their drops, held by the per-course guard; the change is made, and the
// next export holds the drops for the integration team instead of
// unenrolling the course.
func TestStaffRemovalIsHeldByTheCourseGuard(t *testing.T) {
	w := newStaffWorld(t)
	ctx := context.Background()
	course, m, students := w.busiest(t)
	events := w.count(t, `SELECT count(*) FROM ctl.course_mapping_event`)
	ch := mapping.Change{Action: mapping.ActionRemove, ID: m.ID}
	p, err := w.editor.Preview(ctx, "main", course, ch)
	if err != nil {
		t.Fatal(err)
	}
	if p.Export.Drops != students || !p.Export.Held || p.Export.HeldDrops != students || p.Export.Adds != 0 || p.Export.Causes {
		t.Fatalf("preview of removing %s from %s (%d students): %+v", m.SISKey, course, students, *p.Export)
	}
	if w.count(t, `SELECT count(*) FROM ctl.course_mapping WHERE mapping_id = $1`, m.ID) != 1 ||
		w.count(t, `SELECT count(*) FROM ctl.course_mapping_event`) != events {
		t.Fatal("the preview changed the warehouse")
	}
	p, err = w.editor.Apply(ctx, "main", course, ch, "lect@main (A Lecturer) via Moodle", map[string]any{"via": "lti"})
	if err != nil || !p.Applied {
		t.Fatalf("apply: %v %+v", err, p)
	}
	if w.count(t, `SELECT count(*) FROM ctl.course_mapping WHERE mapping_id = $1`, m.ID) != 0 ||
		w.count(t, `SELECT count(*) FROM ctl.course_mapping_event WHERE action = 'delete' AND by = 'lect@main (A Lecturer) via Moodle'
			AND detail ->> 'via' = 'lti' AND detail -> 'mapping' ->> 'sis_key' = $1`, m.SISKey) != 1 {
		t.Error("the removal is not recorded with who made it")
	}
	res, err := app.RunPipeline(ctx, w.e, app.RunOptions{Progress: "off"})
	if res == nil {
		t.Fatal(err)
	}
	if held := w.count(t, `SELECT count(*) FROM ctl.guard_event WHERE guard = 'course_drop' AND decision = 'held' AND subject = $1
		AND run_id = $2`, course, res.RunID); held != 1 {
		t.Errorf("the export recorded %d holds of %s", held, course)
	}
	if kept := w.count(t, `SELECT count(*) FROM ctl.published_membership WHERE instance = 'main' AND course_idnumber = $1
		AND status = 1 AND roletype = '01'`, course); kept != students {
		t.Errorf("%d of the %d students of %s are still published after the held removal", kept, students, course)
	}
}

// Staff cannot change anything while the mappings are frozen (global
// deactivation, rollover, or a course the integration team froze), nor
// make a change that alone would refuse the site's export, nor touch a
// mapping of another course or one a rule makes.
func TestStaffChangesRefused(t *testing.T) {
	w := newStaffWorld(t)
	ctx := context.Background()
	course, m, _ := w.busiest(t)
	by := "lect@main via Moodle"
	refused := func(name string, err error, want string) {
		t.Helper()
		var re *coursemap.RefusedError
		var ce *mapping.ChangeError
		if !(errors.As(err, &re) || errors.As(err, &ce)) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want a refusal saying %q", name, err, want)
		}
	}
	remove := mapping.Change{Action: mapping.ActionRemove, ID: m.ID}

	// Global freeze, as `mim mappings deactivate --all` and the rollover set it.
	if _, err := mapping.FreezeEdits(ctx, w.db.Pool, true, "ops@host", "start of term freeze", nil); err != nil {
		t.Fatal(err)
	}
	_, err := w.editor.Apply(ctx, "main", course, remove, by, nil)
	refused("global freeze", err, "start of term freeze")
	if _, err := mapping.FreezeEdits(ctx, w.db.Pool, false, "ops@host", "released", nil); err != nil {
		t.Fatal(err)
	}
	// One course frozen by the integration team.
	tx, err := w.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mapping.SetActive(ctx, tx, mapping.Filter{Instance: "main", Course: course}, false, "ops@host", "exam board"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = w.editor.Preview(ctx, "main", course, remove)
	refused("course freeze", err, "exam board")
	tx, _ = w.db.Pool.Begin(ctx)
	if _, err := mapping.SetActive(ctx, tx, mapping.Filter{Instance: "main", Course: course}, true, "ops@host", ""); err != nil {
		t.Fatal(err)
	}
	_ = tx.Commit(ctx)

	// Another course's mapping, and a rule's.
	var other int64
	if err := w.db.Pool.QueryRow(ctx, `SELECT mapping_id FROM ctl.course_mapping WHERE course_idnumber <> $1 LIMIT 1`, course).Scan(&other); err != nil {
		t.Fatal(err)
	}
	_, err = w.editor.Apply(ctx, "main", course, mapping.Change{Action: mapping.ActionRemove, ID: other}, by, nil)
	refused("another course's mapping", err, "is not one of this course's")
	if _, err := w.db.Pool.Exec(ctx, `UPDATE ctl.course_mapping SET origin = 'rule:occurrences' WHERE mapping_id = $1`, m.ID); err != nil {
		t.Fatal(err)
	}
	_, err = w.editor.Apply(ctx, "main", course, remove, by, nil)
	refused("a rule's mapping", err, "made by the rule")
	if _, err := w.db.Pool.Exec(ctx, `UPDATE ctl.course_mapping SET origin = 'synth' WHERE mapping_id = $1`, m.ID); err != nil {
		t.Fatal(err)
	}
	// Something that is not this year's SITS data.
	_, err = w.editor.Apply(ctx, "main", course, mapping.Change{Action: mapping.ActionAdd, Kind: "programme", Key: "NOSUCH", Roles: []string{"student"}}, by, nil)
	refused("an unknown programme", err, "no programme")

	// A change that alone breaches the site's threshold is not made.
	if _, err := settings.Set(ctx, w.db.Pool, "threshold_percent", "100", "ops@host", "test", nil); err != nil {
		t.Fatal(err)
	}
	p, err := w.editor.Preview(ctx, "main", course, remove)
	if err != nil || !p.Export.Causes || p.Export.Threshold != "refused" {
		t.Fatalf("preview under a 100%% threshold: %v %+v", err, p.Export)
	}
	_, err = w.editor.Apply(ctx, "main", course, remove, by, nil)
	refused("a threshold breach", err, "whole site's next export fall below the threshold")
	if w.count(t, `SELECT count(*) FROM ctl.course_mapping WHERE mapping_id = $1`, m.ID) != 1 {
		t.Error("a refused change was made")
	}
}
