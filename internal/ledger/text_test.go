package ledger_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/internal/ledger"
)

func TestWriteStagesAndSteps(t *testing.T) {
	t0 := time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	failure := "reading SITS enrolments: bad date\n"
	steps := []ledger.StepSummary{
		{Key: ledger.StepKey{Stage: "extract", Source: "sits", Instance: "sits", Entity: "student"}, Status: ledger.Succeeded,
			Started: t0, Finished: at(1500 * time.Millisecond), Counts: ledger.Counts{In: 1200, New: 3}},
		{Key: ledger.StepKey{Stage: "extract", Source: "sits", Instance: "sits", Entity: "student_enrl"}, Status: ledger.Failed,
			Started: t0, Finished: at(2 * time.Second), Counts: ledger.Counts{In: 3, Errors: 3}, Error: &failure},
		{Key: ledger.StepKey{Stage: "transform", Entity: "mart.dim_person"}, Status: ledger.Running, Started: *at(3 * time.Second)},
	}
	var b bytes.Buffer
	if err := ledger.WriteStages(&b, steps); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"STAGE", "extract", "1,203", "2s", "1 succeeded, 1 failed", "transform", "running",
		"steps that did not succeed:", "extract/sits/sits/student_enrl", "  extract/sits/sits/student_enrl: reading SITS enrolments: bad date\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stages lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "extract/sits/sits/student ") {
		t.Errorf("a step that succeeded is listed among those that did not:\n%s", out)
	}
	b.Reset()
	if err := ledger.WriteSteps(&b, steps); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "extract/sits/sits/student ") || !strings.Contains(out, "1.5s") ||
		strings.Count(out, "\n") != 5 {
		t.Errorf("steps: a header, a line per step and the error:\n%s", out)
	}
	b.Reset()
	runs := []ledger.RunSummary{{ID: 7, Command: "run", Status: ledger.Partial, Started: t0, Finished: at(time.Minute), Host: "mimhost", Steps: 1234, StepErrors: 3}}
	if err := ledger.WriteRuns(&b, runs); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "RUN") || !strings.Contains(out, "partial") || !strings.Contains(out, "1m0s") ||
		!strings.Contains(out, "1,234") || !strings.Contains(out, "mimhost") {
		t.Errorf("runs:\n%s", out)
	}
}
