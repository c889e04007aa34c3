package transform_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/load/loadtest"
	"github.com/mimwarehouse/mim/transform"
)

func project(t *testing.T, files map[string]string) *transform.Project {
	t.Helper()
	fs := fstest.MapFS{}
	for name, body := range files {
		fs[name] = &fstest.MapFile{Data: []byte(body)}
	}
	p, err := transform.Load(fs)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// raw writes fixture records into the raw store.
type raw struct {
	t    testing.TB
	pool *pgxpool.Pool
}

func (r raw) put(source, instance, entity, key, scope string, payload any) {
	r.t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		r.t.Fatal(err)
	}
	loadtest.Put(r.t, r.pool, loadtest.Record{ID: extract.EntityID{Source: source, Instance: instance, Entity: entity}, Key: key, Scope: scope, Payload: b})
}

func (r raw) delete(source, instance, entity, key string) {
	r.t.Helper()
	loadtest.MarkDeleted(r.t, r.pool, extract.EntityID{Source: source, Instance: instance, Entity: entity}, key, 2)
}

func strings2(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// A small project over raw SITS students: a staging table, a mart that
// counts enrolling students per status, and a check on the mart (its SQL
// files are under testdata/people).
var martFiles = projectFiles("testdata/people")

func opts() transform.Options {
	return transform.Options{StatementTimeout: time.Minute, LockTimeout: 10 * time.Second}
}

func TestFailingCheckLeavesPreviousMartsUntouched(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	r := raw{t, db.Pool}
	r.put("sits", "sits", "student", "1", "", map[string]any{"student_code": "1", "enrolment_status": "E"})
	r.put("sits", "sits", "student", "2", "", map[string]any{"student_code": "2", "enrolment_status": "XE"})
	r.put("sits", "sits", "student", "3", "", map[string]any{"student_code": "3", "enrolment_status": "L"})
	p := project(t, martFiles)

	res, err := transform.Run(ctx, db.Pool, p, opts())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Committed || len(res.Models) != 3 || res.Checked != 4 {
		t.Fatalf("first run: committed %v, %d models, %d checks", res.Committed, len(res.Models), res.Checked)
	}
	before := strings2(t, db.Pool, `SELECT student_code || ':' || enrolment_status FROM mart.active_students ORDER BY 1`)
	if !reflect.DeepEqual(before, []string{"1:E", "2:XE"}) {
		t.Fatalf("mart after first run: %v", before)
	}

	// Tonight SITS sends a status the mart's check does not accept, and a
	// student drops out: the new mart would differ, but its check fails.
	r.put("sits", "sits", "student", "4", "", map[string]any{"student_code": "4", "enrolment_status": "ED"})
	r.put("sits", "sits", "student", "5", "", map[string]any{"student_code": "5", "enrolment_status": "ED"})
	r.delete("sits", "sits", "student", "1")
	res, err = transform.Run(ctx, db.Pool, p, transform.Options{StatementTimeout: time.Minute, LockTimeout: 10 * time.Second, SampleRows: 1})
	var ce *transform.CheckError
	if !errors.As(err, &ce) {
		t.Fatalf("second run: %v, want a *CheckError", err)
	}
	if res.Committed {
		t.Fatal("a run with a failed check committed")
	}
	if len(ce.Failures) != 1 {
		t.Fatalf("failures: %+v", ce.Failures)
	}
	f := ce.Failures[0]
	if f.Model != "mart.active_students" || f.Check != "accepted_values(enrolment_status, 'E', 'XE')" ||
		f.Path != "marts/people/active_students.sql" || f.Line != 2 || f.Failures != 1 ||
		!reflect.DeepEqual(f.Columns, []string{"value", "rows"}) || !reflect.DeepEqual(f.Sample, [][]string{{"ED", "2"}}) {
		t.Errorf("failure %+v", f)
	}
	if msg := err.Error(); !strings.Contains(msg, "1 of 4 checks and tests failed") || !strings.Contains(msg, "ED") ||
		!strings.Contains(msg, "marts/people/active_students.sql:2") {
		t.Errorf("report:\n%s", msg)
	}
	after := strings2(t, db.Pool, `SELECT student_code || ':' || enrolment_status FROM mart.active_students ORDER BY 1`)
	if !reflect.DeepEqual(after, before) {
		t.Errorf("the mart changed although the run failed: %v, was %v", after, before)
	}
	staged := strings2(t, db.Pool, `SELECT student_code FROM stg.sits_student ORDER BY 1`)
	if !reflect.DeepEqual(staged, []string{"1", "2", "3"}) {
		t.Errorf("staging changed although the run failed: %v", staged)
	}
	view := strings2(t, db.Pool, `SELECT enrolment_status || '=' || students FROM mart.status_view ORDER BY 1`)
	if !reflect.DeepEqual(view, []string{"E=1", "XE=1"}) {
		t.Errorf("view: %v", view)
	}
}

func TestRefillRebuildAndOwnership(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	r := raw{t, db.Pool}
	r.put("sits", "sits", "student", "1", "", map[string]any{"student_code": "1", "enrolment_status": "E"})
	p := project(t, martFiles)
	if _, err := transform.Run(ctx, db.Pool, p, opts()); err != nil {
		t.Fatal(err)
	}
	// Someone builds a view on the mart and grants on it; a refill keeps both.
	if _, err := db.Pool.Exec(ctx, `CREATE VIEW public.analyst_view AS SELECT * FROM mart.active_students`); err != nil {
		t.Fatal(err)
	}
	r.put("sits", "sits", "student", "2", "", map[string]any{"student_code": "2", "enrolment_status": "E"})
	res, err := transform.Run(ctx, db.Pool, p, opts())
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]string{}
	for _, m := range res.Models {
		actions[m.Model] = m.Action
	}
	if actions["mart.active_students"] != "refilled" || actions["stg.sits_student"] != "refilled" || actions["mart.status_view"] != "replaced" {
		t.Errorf("actions %v", actions)
	}
	if got := strings2(t, db.Pool, `SELECT student_code FROM public.analyst_view ORDER BY 1`); !reflect.DeepEqual(got, []string{"1", "2"}) {
		t.Errorf("analyst view sees %v", got)
	}
	if got := strings2(t, db.Pool, `SELECT indexname::text FROM pg_indexes WHERE schemaname = 'stg' AND tablename = 'sits_student'`); !reflect.DeepEqual(got, []string{"sits_student__student_code"}) {
		t.Errorf("indexes after refill: %v", got)
	}

	// The staging model gains a column: the table is rebuilt, and the view
	// over the mart is untouched because the mart's columns did not change.
	changed := map[string]string{}
	for k, v := range martFiles {
		changed[k] = v
	}
	changed["staging/sits/sits_student.sql"] = strings.Replace(martFiles["staging/sits/sits_student.sql"],
		"AS enrolment_status", "AS enrolment_status, 1 AS version", 1)
	res, err = transform.Run(ctx, db.Pool, project(t, changed), opts())
	if err != nil {
		t.Fatal(err)
	}
	if res.Models[0].Action != "rebuilt" {
		t.Errorf("changed columns: %+v", res.Models[0])
	}
	// The mart's columns change while the analyst's view depends on it:
	// refused, naming the dependant, and nothing is committed.
	changed["marts/people/active_students.sql"] = strings.Replace(martFiles["marts/people/active_students.sql"],
		"s.enrolment_status\n", "s.enrolment_status, 'x' AS extra\n", 1)
	_, err = transform.Run(ctx, db.Pool, project(t, changed), opts())
	var me *transform.ModelError
	if !errors.As(err, &me) || me.Model != "mart.active_students" || !strings.Contains(err.Error(), "analyst_view") {
		t.Errorf("dropping a table with dependants: %v", err)
	}

	// A table a migration owns (no "mim model" comment) is refilled when
	// its columns match and never dropped when they do not.
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE mart.owned (student_code text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	owned := map[string]string{
		"staging/sits/sits_student.sql": martFiles["staging/sits/sits_student.sql"],
		"marts/x/owned.sql":             "-- depends: stg.sits_student\nSELECT student_code FROM stg.sits_student",
	}
	if _, err := transform.Run(ctx, db.Pool, project(t, owned), opts()); err != nil {
		t.Fatal(err)
	}
	if got := strings2(t, db.Pool, `SELECT student_code FROM mart.owned ORDER BY 1`); !reflect.DeepEqual(got, []string{"1", "2"}) {
		t.Errorf("owned table: %v", got)
	}
	owned["marts/x/owned.sql"] = "-- depends: stg.sits_student\nSELECT student_code, enrolment_status FROM stg.sits_student"
	_, err = transform.Run(ctx, db.Pool, project(t, owned), opts())
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "was not built by mim transform") {
		t.Errorf("changed owned table: %v", err)
	}
}

func TestModelErrorsPointAtTheLine(t *testing.T) {
	db := pgtest.New(t)
	p := project(t, map[string]string{
		"staging/s/ok.sql": "SELECT 1 AS x",
		"marts/m/bad.sql": `-- depends: stg.ok
-- description: a model with a typo on line 5
SELECT
    o.x,
    o.y
FROM stg.ok o`,
	})
	res, err := transform.Run(context.Background(), db.Pool, p, opts())
	var me *transform.ModelError
	if !errors.As(err, &me) {
		t.Fatalf("%v, want a *ModelError", err)
	}
	if me.Model != "mart.bad" || me.Line != 5 || !strings.Contains(err.Error(), "marts/m/bad.sql:5") || !strings.Contains(err.Error(), `column o.y does not exist`) {
		t.Errorf("error %q (line %d)", err, me.Line)
	}
	if res.Committed {
		t.Error("committed")
	}
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE schemaname = 'stg' AND tablename = 'ok'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("stg.ok exists after a failed run (%d, %v)", n, err)
	}

	for _, c := range []struct{ sql, want string }{
		{"SELECT 1", "column 1 has no name"},
		{"SELECT 1 AS x, 2 AS x", `column "x" appears twice`},
	} {
		p := project(t, map[string]string{"staging/s/m.sql": c.sql})
		if _, err := transform.Run(context.Background(), db.Pool, p, opts()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.sql, err)
		}
	}
	p = project(t, map[string]string{"staging/s/m.sql": "-- checks: unique(nope)\nSELECT 1 AS x"})
	if _, err := transform.Run(context.Background(), db.Pool, p, opts()); err == nil || !strings.Contains(err.Error(), `names column "nope", which the model does not have (it has x)`) {
		t.Errorf("check on a missing column: %v", err)
	}
}

func TestSelectionInsideOneTransaction(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	r := raw{t, db.Pool}
	r.put("sits", "sits", "student", "1", "", map[string]any{"student_code": "1", "enrolment_status": "E"})
	p := project(t, martFiles)

	_, err := transform.Run(ctx, db.Pool, p, transform.Options{Select: []string{"mart.active_students"}})
	var nb *transform.NotBuiltError
	if !errors.As(err, &nb) || nb.Dependency != "stg.sits_student" {
		t.Fatalf("selecting a model whose dependency was never built: %v", err)
	}
	res, err := transform.Run(ctx, db.Pool, p, transform.Options{Select: []string{"+mart.active_students"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(res.Models); got != 2 || !reflect.DeepEqual(res.Stale, []string{"mart.status_view"}) {
		t.Errorf("built %d models, stale %v", got, res.Stale)
	}
	if len(res.Skipped) != 0 {
		t.Errorf("skipped %v", res.Skipped)
	}
	r.put("sits", "sits", "student", "2", "", map[string]any{"student_code": "2", "enrolment_status": "E"})
	res, err = transform.Run(ctx, db.Pool, p, transform.Options{Select: []string{"stg.sits_student"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings2(t, db.Pool, `SELECT student_code FROM mart.active_students`); !reflect.DeepEqual(got, []string{"1"}) {
		t.Errorf("an unselected mart was rebuilt: %v", got)
	}
	if !reflect.DeepEqual(res.Stale, []string{"mart.active_students", "mart.status_view"}) {
		t.Errorf("stale %v", res.Stale)
	}
}

func TestRollbackRehearsalAndLedgerSteps(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	r := raw{t, db.Pool}
	r.put("sits", "sits", "student", "1", "", map[string]any{"student_code": "1", "enrolment_status": "E"})
	p := project(t, martFiles)

	run, err := ledger.Begin(ctx, db.Pool, "transform", "test", "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	o := opts()
	o.Run, o.Rollback = run, true
	res, err := transform.Run(ctx, db.Pool, p, o)
	if err != nil || res.Committed {
		t.Fatalf("rehearsal: committed %v, %v", res.Committed, err)
	}
	if err := run.Finish(ctx, ledger.Succeeded, 0, nil); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname IN ('stg', 'mart')`).Scan(&n); err != nil || n != 0 {
		t.Errorf("a rehearsal left %d tables (%v)", n, err)
	}
	steps, err := ledger.Steps(ctx, db.Pool, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range steps {
		got = append(got, s.Key.Entity+"="+s.Status)
		if s.Key.Stage != transform.Stage {
			t.Errorf("step stage %q", s.Key.Stage)
		}
	}
	want := []string{"stg.sits_student=failed", "mart.active_students=failed", "mart.status_view=failed", "checks=failed"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("steps %v, want %v", got, want)
	}

	run, err = ledger.Begin(ctx, db.Pool, "transform", "test", "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	o.Rollback = false
	if _, err := transform.Run(ctx, db.Pool, p, o); err != nil {
		t.Fatal(err)
	}
	_ = run.Finish(ctx, ledger.Succeeded, 0, nil)
	steps, _ = ledger.Steps(ctx, db.Pool, run.ID)
	for _, s := range steps {
		if s.Status != ledger.Succeeded {
			t.Errorf("committed run: step %s is %s", s.Key.Entity, s.Status)
		}
		if s.Key.Entity == "stg.sits_student" && s.Counts.In != 1 {
			t.Errorf("stg.sits_student rows_in = %d", s.Counts.In)
		}
		if s.Key.Entity == "checks" && s.Counts.In != 4 {
			t.Errorf("checks rows_in = %d", s.Counts.In)
		}
	}
}

func TestTimeoutsEndTheTransform(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	p := project(t, map[string]string{"staging/s/slow.sql": "SELECT pg_sleep(5) IS NULL AS slept"})
	_, err := transform.Run(ctx, db.Pool, p, transform.Options{StatementTimeout: 200 * time.Millisecond, LockTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "warehouse.statement_timeout (200ms)") {
		t.Errorf("statement timeout: %v", err)
	}

	p = project(t, martFiles)
	raw{t, db.Pool}.put("sits", "sits", "student", "1", "", map[string]any{"student_code": "1", "enrolment_status": "E"})
	if _, err := transform.Run(ctx, db.Pool, p, opts()); err != nil {
		t.Fatal(err)
	}
	// A long dashboard query holds the mart: the transform gives up after
	// lock_timeout instead of hanging the night.
	holder, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	if _, err := holder.Exec(ctx, `LOCK TABLE mart.active_students IN ACCESS SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	_, err = transform.Run(ctx, db.Pool, p, transform.Options{StatementTimeout: time.Minute, LockTimeout: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "warehouse.lock_timeout (200ms)") {
		t.Errorf("lock timeout: %v", err)
	}
}

func TestHooksRunInsideTheTransaction(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	p := project(t, map[string]string{
		"staging/s/a.sql": "SELECT 1 AS x",
		"marts/m/b.sql":   "-- depends: stg.a\nSELECT x, (SELECT count(*) FROM ctl.course_mapping) AS mappings FROM stg.a",
	})
	var sawStaging bool
	hook := transform.Hook{Name: "insert", After: "staging", Run: func(ctx context.Context, tx pgx.Tx) (string, error) {
		var n int
		_ = tx.QueryRow(ctx, `SELECT count(*) FROM stg.a`).Scan(&n)
		sawStaging = n == 1
		_, err := tx.Exec(ctx, `INSERT INTO ctl.course_mapping (instance, course_idnumber, sis_kind, sis_key, created_by, updated_by)
			VALUES ('main', 'C1', 'programme', 'P1', 'hook', 'hook')`)
		return "1 mapping", err
	}}
	o := opts()
	o.Hooks = []transform.Hook{hook}
	o.Rollback = true
	res, err := transform.Run(ctx, db.Pool, p, o)
	if err != nil {
		t.Fatal(err)
	}
	if !sawStaging || len(res.Hooks) != 1 || res.Hooks[0].Summary != "1 mapping" {
		t.Errorf("hook saw staging %v, results %+v", sawStaging, res.Hooks)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM ctl.course_mapping`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the hook's write outlived the rolled-back transaction: %d %v", n, err)
	}
	o.Rollback = false
	if _, err := transform.Run(ctx, db.Pool, p, o); err != nil {
		t.Fatal(err)
	}
	if got := strings2(t, db.Pool, `SELECT mappings::text FROM mart.b`); !reflect.DeepEqual(got, []string{"1"}) {
		t.Errorf("the mart did not see the hook's mapping: %v", got)
	}
}

// The ledger's connection dies right after COMMIT (a restart, a network
// cut): the transform committed, so it is recorded as committed, from a
// fresh connection. The marts are the truth, not the failed bookkeeping.
func TestCommittedTransformIsRecordedAsCommittedWhenTheLedgerConnectionDies(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	raw{t, db.Pool}.put("sits", "sits", "student", "1", "", map[string]any{"student_code": "1", "enrolment_status": "E"})
	p := project(t, martFiles)
	// The ledger writes through a pool of its own: one connection holds the
	// run lock, the other records the steps.
	cfg, err := pgxpool.ParseConfig(db.DSN.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 2
	ledgerPool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ledgerPool.Close()
	run, err := ledger.Begin(ctx, ledgerPool, "transform", "test", "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer run.Finish(ctx, ledger.Failed, 1, nil) // releases the run lock before the pool closes
	var pid int
	if err := ledgerPool.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	o := opts()
	o.Run = run
	transform.SetAfterCommit(&o, func() {
		var killed bool
		if err := db.Pool.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&killed); err != nil || !killed {
			t.Errorf("killing the ledger's connection: %v %v", killed, err)
		}
		// Wait until it is gone.
		for i := 0; i < 100; i++ {
			var alive bool
			_ = db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)`, pid).Scan(&alive)
			if !alive {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	res, err := transform.Run(ctx, db.Pool, p, o)
	if err != nil || !res.Committed {
		t.Fatalf("committed %v: %v", res != nil && res.Committed, err)
	}
	if err := run.Finish(ctx, ledger.Succeeded, 0, nil); err != nil {
		t.Fatalf("finishing the run: %v", err)
	}
	steps, err := ledger.Steps(ctx, db.Pool, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 4 {
		t.Fatalf("%d steps", len(steps))
	}
	for _, s := range steps {
		if s.Status != ledger.Succeeded {
			t.Errorf("step %s recorded %s after a committed transform", s.Key.Entity, s.Status)
		}
	}
}

// A check that cannot run is a failed check, never a passed one: the
// transform is rolled back and yesterday's marts stand. The error here
// arises while the rows are read (division by zero on the second row), as
// most run-time errors do.
func TestCheckThatCannotRunFailsTheTransform(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	r := raw{t, db.Pool}
	r.put("sits", "sits", "student", "1", "", map[string]any{"student_code": "1", "enrolment_status": "E"})
	if _, err := transform.Run(ctx, db.Pool, project(t, martFiles), opts()); err != nil {
		t.Fatal(err)
	}
	r.put("sits", "sits", "student", "2", "", map[string]any{"student_code": "2", "enrolment_status": "E"})
	files := map[string]string{"tests/divides_by_zero.sql": `SELECT student_code, 1 / (row_number() OVER (ORDER BY student_code) - 2) AS boom
FROM mart.active_students WHERE false IS NOT NULL`}
	for k, v := range martFiles {
		files[k] = v
	}
	res, err := transform.Run(ctx, db.Pool, project(t, files), opts())
	var ce *transform.CheckError
	if !errors.As(err, &ce) || res.Committed {
		t.Fatalf("a check that cannot run: committed %v, %v", res.Committed, err)
	}
	if len(res.Failures) != 1 || !strings.Contains(res.Failures[0].Err, "division by zero") {
		t.Errorf("failures %+v", res.Failures)
	}
	if got := strings2(t, db.Pool, `SELECT student_code FROM mart.active_students ORDER BY 1`); !reflect.DeepEqual(got, []string{"1"}) {
		t.Errorf("the marts moved: %v", got)
	}
}

// projectFiles reads the SQL files of a test project under dir, keyed by
// their slash path below it; it panics if dir cannot be read, failing
// every test of the package.
func projectFiles(dir string) map[string]string {
	files := map[string]string{}
	err := fs.WalkDir(os.DirFS(dir), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(os.DirFS(dir), path)
		files[path] = string(b)
		return err
	})
	if err != nil {
		panic(fmt.Sprintf("reading the test project %s: %v", dir, err))
	}
	return files
}
