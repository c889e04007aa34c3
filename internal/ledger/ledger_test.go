package ledger_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

type refusal struct{}

func (refusal) Error() string { return "threshold breached" }
func (refusal) ExitCode() int { return 3 }

func TestRunAndStepsAreRecorded(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	run, err := ledger.Begin(ctx, db.Pool, "extract", "test", "v-test", []string{"--source", "sits"})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := run.Step(ctx, ledger.StepKey{Stage: "extract", Source: "sits", Instance: "sits", Entity: "student"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ok.Finish(ctx, ledger.Succeeded, ledger.Counts{In: 10, New: 7, Changed: 2, Unchanged: 1}, map[string]int{"bad_rows": 0}, nil); err != nil {
		t.Fatal(err)
	}
	bad, _ := run.Step(ctx, ledger.StepKey{Stage: "extract", Source: "sits", Instance: "sits", Entity: "student_enrl"})
	if err := bad.Finish(ctx, ledger.Failed, ledger.Counts{In: 3, Errors: 3}, nil, errors.New("reading SITS enrolments: bad date")); err != nil {
		t.Fatal(err)
	}
	// A step left open is closed as failed when the run finishes.
	if _, err := run.Step(ctx, ledger.StepKey{Stage: "load"}); err != nil {
		t.Fatal(err)
	}
	if err := run.Finish(ctx, ledger.Partial, 1, errors.New("1 of 2 entities failed")); err != nil {
		t.Fatal(err)
	}
	if err := run.Finish(ctx, ledger.Succeeded, 0, nil); err != nil {
		t.Fatal(err) // second finish is a no-op
	}

	runs, err := ledger.Recent(ctx, db.Pool, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Status != ledger.Partial || runs[0].Steps != 3 || runs[0].StepErrors != 3 || *runs[0].ExitCode != 1 {
		t.Fatalf("recent runs: %+v", runs)
	}
	steps, err := ledger.Steps(ctx, db.Pool, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 3 || steps[0].Counts.New != 7 || steps[0].Status != ledger.Succeeded ||
		steps[1].Status != ledger.Failed || *steps[1].Error != "reading SITS enrolments: bad date" ||
		steps[2].Status != ledger.Failed {
		t.Fatalf("steps: %+v", steps)
	}
}

func TestSecondRunRefusedWhileFirstHoldsTheLock(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	first, err := ledger.Begin(ctx, db.Pool, "run", "test", "v", nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := warehouse.Open(ctx, db.DSN, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, err = ledger.Begin(ctx, other, "run", "test", "v", nil)
	var le *warehouse.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second run: %v", err)
	}
	if want := "`mim run`"; !contains(le.Error(), want) {
		t.Errorf("refusal should name the holding run: %v", le)
	}
	if err := first.Finish(ctx, ledger.Succeeded, 0, nil); err != nil {
		t.Fatal(err)
	}
	second, err := ledger.Begin(ctx, other, "run", "test", "v", nil)
	if err != nil {
		t.Fatalf("after the first finished: %v", err)
	}
	second.Finish(ctx, ledger.Succeeded, 0, nil)
}

func TestDeadRunIsMarkedAbandoned(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	// A process that died left a running row and no lock.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO ctl.run (command, environment, host, pid, version) VALUES ('run','test','h',1,'v')`); err != nil {
		t.Fatal(err)
	}
	r, err := ledger.Begin(ctx, db.Pool, "run", "test", "v", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Finish(ctx, ledger.Succeeded, 0, nil)
	var status string
	db.Pool.QueryRow(ctx, `SELECT status FROM ctl.run WHERE run_id < $1`, r.ID).Scan(&status)
	if status != ledger.Abandoned {
		t.Errorf("dead run status = %q", status)
	}
}

func TestOutcome(t *testing.T) {
	if ledger.Outcome(nil) != ledger.Succeeded || ledger.Outcome(errors.New("x")) != ledger.Failed ||
		ledger.Outcome(refusal{}) != ledger.Refused {
		t.Error("outcome mapping wrong")
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// A step that recorded its own seconds (a transform model, finished only at
// the commit) is timed by them; stages sum their steps up.
func TestStepDurationAndStages(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	run, err := ledger.Begin(ctx, db.Pool, "transform", "test", "v", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer run.Finish(ctx, ledger.Succeeded, 0, nil)
	model, _ := run.Step(ctx, ledger.StepKey{Stage: "transform", Entity: "mart.dim_person"})
	other, _ := run.Step(ctx, ledger.StepKey{Stage: "transform", Entity: "checks"})
	time.Sleep(30 * time.Millisecond) // the commit, which both wait for
	if err := model.Finish(ctx, ledger.Succeeded, ledger.Counts{In: 7}, map[string]any{"seconds": 0.004}, nil); err != nil {
		t.Fatal(err)
	}
	if err := other.Finish(ctx, ledger.Failed, ledger.Counts{In: 3, Errors: 1}, map[string]any{"failures": []string{"x"}}, nil); err != nil {
		t.Fatal(err)
	}
	steps, err := ledger.Steps(ctx, db.Pool, run.ID)
	if err != nil || len(steps) != 2 {
		t.Fatalf("%v %v", steps, err)
	}
	if d := steps[0].Duration(); d != 4*time.Millisecond {
		t.Errorf("the model took %s by the ledger, want its own 4ms", d)
	}
	if d := steps[1].Duration(); d < 30*time.Millisecond {
		t.Errorf("a step without seconds took %s, want its span", d)
	}
	st := ledger.ByStage(steps)
	if len(st) != 1 || st[0].Steps != 2 || st[0].Counts.In != 10 || st[0].Counts.Errors != 1 ||
		st[0].Statuses() != "1 succeeded, 1 failed" || st[0].Finished == nil {
		t.Errorf("%+v", st)
	}
}
