package drill

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// A session holds only when every drill held, the quiet night included: a
// drill that wrote to Moodle, or that no guard caught, fails it.
func TestReportHoldsOnlyWhenEveryDrillHeld(t *testing.T) {
	quiet := Result{Drill: quietNight(), Status: "succeeded", Held: true}
	held := Result{Drill: Drill{Name: "a", Disaster: "x", Stage: sql("x")}, Status: "refused", Exit: 3, Held: true, Caught: []string{"completeness: x"}}
	rep := &Report{Sites: 2, Results: []Result{quiet, held}}
	if !rep.AllHeld() || rep.Err() != nil {
		t.Fatalf("every drill held: %v", rep.Err())
	}
	wrote := held
	wrote.Drill.Name, wrote.Writes, wrote.Held = "b", 3, false
	rep.Results = append(rep.Results, wrote)
	var fe *FailedError
	if err := rep.Err(); !errors.As(err, &fe) || len(fe.Drills) != 1 || fe.Drills[0] != "b" {
		t.Errorf("a drill that wrote: %v", err)
	}
	var out bytes.Buffer
	if err := rep.Write(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FAILED  b", "1 of 2 drills held; 3 writes reached Moodle", "do not trust this build"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// The drills are a plain list, each named once, each with a disaster.
func TestDrillsAreNamedOnce(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range Drills() {
		if d.Name == "" || d.Disaster == "" || d.Stage == nil || seen[d.Name] {
			t.Errorf("drill %+v", d.Name)
		}
		seen[d.Name] = true
	}
	for _, want := range []string{"members-emptied", "users-empty", "unreadable-row", "sits-shrink", "course-emptied",
		"groups-deleted", "staging-to-production", "restored-production", "max-input-vars"} {
		if !seen[want] {
			t.Errorf("no drill %s", want)
		}
	}
}
