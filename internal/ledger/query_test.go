package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
)

// fixtureRuns records three runs: an extract (two sources, one step
// failed), a transform that built mart.dim_person, and a run whose
// transform of mart.dim_person failed.
func fixtureRuns(t *testing.T, db *pgtest.DB) (extract, transform, failed *ledger.Run) {
	t.Helper()
	ctx := context.Background()
	begin := func(command string) *ledger.Run {
		r, err := ledger.Begin(ctx, db.Pool, command, "test", "v", nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	step := func(r *ledger.Run, k ledger.StepKey, status string, c ledger.Counts, detail any) {
		s, err := r.Step(ctx, k)
		if err == nil {
			err = s.Finish(ctx, status, c, detail, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	extract = begin("extract")
	step(extract, ledger.StepKey{Stage: "extract", Source: "sits", Instance: "sits", Entity: "student"}, ledger.Partial,
		ledger.Counts{In: 10, New: 4, Changed: 1, Errors: 1}, map[string]int{"kept_bad_keys": 1})
	step(extract, ledger.StepKey{Stage: "extract", Source: "moodle", Instance: "main", Entity: "users"}, ledger.Succeeded,
		ledger.Counts{In: 5, Deleted: 2}, nil)
	if err := extract.Finish(ctx, ledger.Partial, 0, nil); err != nil {
		t.Fatal(err)
	}
	transform = begin("transform")
	step(transform, ledger.StepKey{Stage: "transform", Entity: "mart.dim_person"}, ledger.Succeeded, ledger.Counts{In: 7}, nil)
	if err := transform.Finish(ctx, ledger.Succeeded, 0, nil); err != nil {
		t.Fatal(err)
	}
	failed = begin("transform")
	step(failed, ledger.StepKey{Stage: "transform", Entity: "mart.dim_person"}, ledger.Failed, ledger.Counts{}, nil)
	if err := failed.Finish(ctx, ledger.Failed, 1, errors.New("a check failed")); err != nil {
		t.Fatal(err)
	}
	return extract, transform, failed
}

func TestRunByIDAndLastRun(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	extract, _, failed := fixtureRuns(t, db)
	r, err := ledger.RunByID(ctx, db.Pool, extract.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != extract.ID || r.Command != "extract" || r.Status != ledger.Partial || r.Steps != 2 || r.StepErrors != 1 {
		t.Errorf("run %d: %+v", extract.ID, r)
	}
	if _, err := ledger.RunByID(ctx, db.Pool, failed.ID+1); !errors.Is(err, ledger.ErrNoRun) {
		t.Errorf("a run that does not exist: %v", err)
	}
	last, err := ledger.LastRun(ctx, db.Pool, "transform")
	if err != nil {
		t.Fatal(err)
	}
	if last.ID != failed.ID || last.Status != ledger.Failed || last.Error == nil || *last.Error != "a check failed" {
		t.Errorf("last transform: %+v", last)
	}
	if _, err := ledger.LastRun(ctx, db.Pool, "groups"); !errors.Is(err, ledger.ErrNoRun) {
		t.Errorf("a command never run: %v", err)
	}
	steps, err := ledger.Steps(ctx, db.Pool, extract.ID)
	if err != nil || len(steps) != 2 {
		t.Fatalf("%v %v", steps, err)
	}
	if string(steps[0].Detail) != `{"kept_bad_keys": 1}` || string(steps[1].Detail) != `{}` {
		t.Errorf("details %s and %s", steps[0].Detail, steps[1].Detail)
	}
}

// The export asks when a model was last built: a failed build does not
// count.
func TestLastStepSucceeded(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	_, transform, _ := fixtureRuns(t, db)
	for _, c := range []struct {
		stage, entity string
		want          int64
	}{
		{"transform", "mart.dim_person", transform.ID},
		{"transform", "mart.dim_course", 0},
		{"extract", "mart.dim_person", 0},
	} {
		got, err := ledger.LastStepSucceeded(ctx, db.Pool, c.stage, c.entity)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("LastStepSucceeded(%s, %s) = %d, want %d", c.stage, c.entity, got, c.want)
		}
	}
}

// The totals /metrics reads and the series the status page charts.
func TestTotalsAndSeries(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	extract, _, _ := fixtureRuns(t, db)
	counts, err := ledger.RunCounts(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]int64{}
	for _, c := range counts {
		byKey[c.Command+"/"+c.Status] = c.Runs
	}
	if fmt.Sprint(byKey) != "map[extract/partial:1 transform/failed:1 transform/succeeded:1]" {
		t.Errorf("run counts %v", byKey)
	}
	totals, err := ledger.ExtractTotals(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ledger.Counts{}
	for _, x := range totals {
		got[x.Source+":"+x.Instance+"/"+x.Entity] = x.Counts
	}
	if c := got["sits:sits/student"]; c.In != 10 || c.New != 4 || c.Changed != 1 || c.Errors != 1 || len(got) != 2 {
		t.Errorf("extract totals %+v", got)
	}
	st, err := ledger.Stages(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int64{}
	for _, o := range st.Outcomes {
		outcomes[o.Stage+"/"+o.Site+"/"+o.Outcome] = o.Runs
	}
	if fmt.Sprint(outcomes) != "map[extract/main/succeeded:1 extract/sits/partial:1 transform//failed:1 transform//succeeded:1]" {
		t.Errorf("stage outcomes %v", outcomes)
	}
	if len(st.LastSuccess) != 2 || len(st.LastSeconds) != 2 {
		t.Errorf("last successes %v, last seconds %v (want extract and transform; no mim run)", st.LastSuccess, st.LastSeconds)
	}

	points, err := ledger.ExtractRecordsPerRun(ctx, db.Pool, 30)
	if err != nil {
		t.Fatal(err)
	}
	run := fmt.Sprint(extract.ID)
	if fmt.Sprint(points) != fmt.Sprintf("[{%s moodle 5} {%s sits 10}]", run, run) &&
		fmt.Sprint(points) != fmt.Sprintf("[{%s sits 10} {%s moodle 5}]", run, run) {
		t.Errorf("records per run %v", points)
	}
	points, err = ledger.ExtractChangesPerRun(ctx, db.Pool, 30)
	if err != nil || len(points) != 2 || points[0].Value+points[1].Value != 7 {
		t.Errorf("changes per run %v %v", points, err)
	}
	points, err = ledger.RunMinutes(ctx, db.Pool, 2)
	if err != nil || len(points) != 2 || points[0].Series != "transform" || points[1].Series != "transform" {
		t.Errorf("minutes of the last 2 runs %v %v", points, err)
	}
}
