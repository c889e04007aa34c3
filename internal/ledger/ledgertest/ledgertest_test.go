package ledgertest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/ledger/ledgertest"
	"github.com/mimwarehouse/mim/internal/pgtest"
)

// The readers see the runs and steps the ledger recorded.
func TestReaders(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	if n := ledgertest.CountRuns(t, db.Pool, ""); n != 0 {
		t.Fatalf("a new warehouse holds %d runs", n)
	}
	run, err := ledger.Begin(ctx, db.Pool, "extract", "test", "v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, entity := range []string{"users", "enrolments"} {
		s, err := run.Step(ctx, ledger.StepKey{Stage: "extract", Source: "moodle", Instance: "main", Entity: entity})
		if err != nil {
			t.Fatal(err)
		}
		var stepErr error
		if entity == "enrolments" {
			stepErr = errors.New("course 10 timed out")
		}
		if err := s.Finish(ctx, ledger.Outcome(stepErr), ledger.Counts{In: 3}, map[string]any{"courses": 2}, stepErr); err != nil {
			t.Fatal(err)
		}
	}
	if err := run.Finish(ctx, ledger.Failed, 1, errors.New("one step failed")); err != nil {
		t.Fatal(err)
	}
	if n := ledgertest.CountRuns(t, db.Pool, "command = $1 AND status = 'failed'", "extract"); n != 1 {
		t.Errorf("CountRuns: %d, want 1", n)
	}
	if n := ledgertest.CountRuns(t, db.Pool, "command = 'run'"); n != 0 {
		t.Errorf("CountRuns of another command: %d, want 0", n)
	}
	if n := ledgertest.CountSteps(t, db.Pool, "run_id = $1", run.ID); n != 2 {
		t.Errorf("CountSteps: %d, want 2", n)
	}
	if n := ledgertest.CountSteps(t, db.Pool, "status = 'failed' AND error LIKE '%timed out%'"); n != 1 {
		t.Errorf("CountSteps of the failed step: %d, want 1", n)
	}
	if got := ledgertest.RunText(t, db.Pool, "status || ' ' || exit_code || ' ' || version", "command = 'extract'", "ORDER BY run_id DESC LIMIT 1"); got != "failed 1 v1" {
		t.Errorf("RunText: %q", got)
	}
	if got := ledgertest.StepText(t, db.Pool, "string_agg(entity || '=' || status || ':' || (detail->>'courses'), ',' ORDER BY step_id)", "run_id = $1", run.ID); got != "users=succeeded:2,enrolments=failed:2" {
		t.Errorf("StepText: %q", got)
	}
}

// AddPast records a finished run back-dated from now, that the ledger's
// readers see as such.
func TestAddPast(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	id := ledgertest.AddPast(t, db.Pool, ledgertest.Past{Command: "run", Status: "succeeded", Host: "old-host", Version: "v0",
		Ago: 96 * time.Hour, Took: 5 * time.Minute})
	r, err := ledger.RunByID(ctx, db.Pool, id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Command != "run" || r.Status != "succeeded" || r.Host != "old-host" || r.Environment != "test" || r.ExitCode == nil || *r.ExitCode != 0 {
		t.Errorf("past run %+v", r)
	}
	if ago := time.Since(r.Started); ago < 95*time.Hour || ago > 97*time.Hour {
		t.Errorf("started %s ago, want four days", ago)
	}
	if r.Finished == nil || r.Finished.Sub(r.Started) != 5*time.Minute {
		t.Errorf("finished %v after starting %v, want 5 minutes", r.Finished, r.Started)
	}
	if got := ledgertest.RunText(t, db.Pool, "version || ' ' || pid", "run_id = $1", "", id); got != "v0 1" {
		t.Errorf("version and pid: %q", got)
	}
	ok, err := ledger.LastSuccess(ctx, db.Pool, "run")
	if err != nil || !ok.Equal(*r.Finished) {
		t.Errorf("last success %v (%v), want %v", ok, err, r.Finished)
	}
}

// Nights records one run a day, newest first, each with its steps.
func TestNights(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	before := ledgertest.AddPast(t, db.Pool, ledgertest.Past{Command: "groups", Status: "succeeded", Host: "h", Version: "v", Ago: time.Hour, Took: time.Second})
	nights := ledgertest.Nights(t, db.Pool, 3, 4)
	if len(nights) != 3 {
		t.Fatalf("%d nights, want 3", len(nights))
	}
	for i, n := range nights {
		if days := time.Since(n.Started).Hours() / 24; days < float64(i)+0.9 || days > float64(i)+1.1 {
			t.Errorf("night %d started %.2f days ago, want %d", i, days, i+1)
		}
		steps, err := ledger.Steps(ctx, db.Pool, n.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range steps {
			got = append(got, s.Key.Stage+"/"+s.Key.Entity)
		}
		if len(steps) != 4 || got[0] != "transform/e1" || got[2] != "extract/e3" {
			t.Errorf("night %d steps %v", n.ID, got)
		}
		r, err := ledger.RunByID(ctx, db.Pool, n.ID)
		if err != nil || r.Command != "run" || r.Status != "succeeded" || r.Finished == nil || r.Finished.Sub(r.Started) != 7*time.Minute {
			t.Errorf("night %+v (%v)", r, err)
		}
	}
	if n := ledgertest.CountSteps(t, db.Pool, "run_id = $1", before); n != 0 {
		t.Errorf("the earlier run got %d steps", n)
	}
	if got := ledgertest.StepText(t, db.Pool, "string_agg(rows_in || '/' || rows_new, ',' ORDER BY entity)", "run_id = $1", nights[0].ID); got != "1001/1,1002/2,1003/3,1004/4" {
		t.Errorf("rows of the newest night's steps: %s", got)
	}
}
