package bench

import (
	"context"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/ledger"
)

// lastRun is the latest ledger run of a command: what the child just did.
func lastRun(ctx context.Context, pool *pgxpool.Pool, command string) (int64, string, error) {
	r, err := ledger.LastRun(ctx, pool, command)
	if err != nil {
		return 0, "", err
	}
	return r.ID, r.Status, nil
}

// task is one task of a `mim run`, as its summary reports it.
type task struct {
	name, stage, instance, status string
	start, end                    time.Time
}

// taskLine is a task's line in the run's summary (pipeline.WriteSummary):
// "extract:moodle:main: 17:44:26.913 - 17:44:42.994 (16.081s) succeeded".
// The ledger has no step spanning a whole task (the export, for one,
// records its steps as each feed ends), so the summary is where a task's
// start and end are.
var taskLine = regexp.MustCompile(`(?m)^([a-z]+(?::[A-Za-z0-9_.-]+)*): (\d\d:\d\d:\d\d\.\d{3}) - (\d\d:\d\d:\d\d\.\d{3}) \(([^)]+)\) (\w+)$`)

// summaryTasks reads the tasks from a run's output, placing the summary's
// clock times (local, to the millisecond) on the day the run started.
func summaryTasks(output string, started time.Time) []task {
	day := time.Date(started.Year(), started.Month(), started.Day(), 0, 0, 0, 0, time.Local)
	at := func(clock string) time.Time {
		t, err := time.ParseInLocation("15:04:05.000", clock, time.Local)
		if err != nil {
			return time.Time{}
		}
		v := day.Add(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute +
			time.Duration(t.Second())*time.Second + time.Duration(t.Nanosecond()))
		if v.Before(started.Add(-time.Minute)) { // past midnight
			v = v.Add(24 * time.Hour)
		}
		return v
	}
	var out []task
	for _, m := range taskLine.FindAllStringSubmatch(output, -1) {
		t := task{name: m[1], start: at(m[2]), end: at(m[3]), status: m[5]}
		if d, err := time.ParseDuration(m[4]); err == nil {
			t.end = t.start.Add(d)
		}
		parts := strings.Split(t.name, ":")
		t.stage = parts[0]
		if len(parts) > 1 {
			t.instance = parts[len(parts)-1]
		}
		out = append(out, t)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

// step is one transform step: a model, a hook or the checks.
type step struct {
	name, layer string
	rows        int64
	took        time.Duration
}

// transformSteps reads a transform's steps; a model's time is its build
// time (detail.seconds), the checks' the span of their step.
func transformSteps(ctx context.Context, pool *pgxpool.Pool, runID int64) ([]step, error) {
	steps, err := ledger.Steps(ctx, pool, runID)
	if err != nil {
		return nil, err
	}
	var out []step
	for _, st := range steps {
		if st.Key.Stage != "transform" {
			continue
		}
		s := step{name: st.Key.Entity, rows: st.Counts.In, took: st.Duration()}
		switch {
		case strings.HasPrefix(s.name, "hook:"):
			s.layer = "hook"
		case s.name == "checks":
			s.layer = "checks"
		default:
			s.layer, _, _ = strings.Cut(s.name, ".")
		}
		out = append(out, s)
	}
	return out, nil
}
