package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/observe"
	"github.com/mimwarehouse/mim/internal/pgtest"
)

type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }
func (r *refusal) ExitCode() int { return 3 }

// recorder is a fake stage that writes one ledger step, as real stages do,
// and notes that it ran.
type recorder struct {
	mu  sync.Mutex
	ran []string
}

func (r *recorder) stage(name, stage, source, instance string, err error) RunnerFunc {
	return func(ctx context.Context, run *ledger.Run, prior Outcomes) Report {
		r.mu.Lock()
		r.ran = append(r.ran, name)
		r.mu.Unlock()
		step, serr := run.Step(ctx, ledger.StepKey{Stage: stage, Source: source, Instance: instance, Entity: "things"})
		if serr != nil {
			return Report{Err: serr}
		}
		_ = step.Finish(ctx, ledger.Outcome(err), ledger.Counts{In: 10, New: 3, Changed: 2, Unchanged: 5}, nil, err)
		return Report{Err: err, Lines: []string{name + " did its work"}}
	}
}

func (r *recorder) did(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.ran {
		if n == name {
			return true
		}
	}
	return false
}

// nightly builds the shape of `mim run`: three sources, a transform that
// needs SITS and waits for the sites, an export, and one group sync per site.
func nightly(r *recorder, fail map[string]error) []Task {
	task := func(name, stage, source, instance string, needs, after []string) Task {
		return Task{Name: name, Stage: stage, Source: source, Instance: instance, Needs: needs, After: after,
			Runner: r.stage(name, stage, source, instance, fail[name])}
	}
	return []Task{
		task("extract:sits", "extract", "sits", "sits", nil, nil),
		task("extract:moodle:a", "extract", "moodle", "a", nil, nil),
		task("extract:moodle:b", "extract", "moodle", "b", nil, nil),
		task("transform", "transform", "", "", []string{"extract:sits"}, []string{"extract:moodle:a", "extract:moodle:b"}),
		task("export", "export", "", "", []string{"transform"}, nil),
		task("groups:a", "groups", "moodle", "a", []string{"transform", "extract:moodle:a"}, nil),
		task("groups:b", "groups", "moodle", "b", []string{"transform", "extract:moodle:b"}, nil),
	}
}

func begin(t *testing.T, db *pgtest.DB) *ledger.Run {
	t.Helper()
	run, err := ledger.Begin(context.Background(), db.Pool, "run", "test", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = run.Finish(context.Background(), ledger.Failed, 1, errors.New("test ended")) })
	return run
}

func statuses(res *Result) map[string]string {
	out := map[string]string{}
	for _, o := range res.Outcomes {
		out[o.Task] = o.Status
	}
	return out
}

func TestFailedSiteStopsOnlyWhatNeedsIt(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	r := &recorder{}
	p, err := New(nightly(r, map[string]error{"extract:moodle:a": errors.New("site a answered 503")}))
	if err != nil {
		t.Fatal(err)
	}
	run := begin(t, db)
	res := p.Run(ctx, run)
	got := statuses(res)
	want := map[string]string{
		"extract:sits": "succeeded", "extract:moodle:a": "failed", "extract:moodle:b": "succeeded",
		"transform": "succeeded", "export": "succeeded", "groups:a": "skipped", "groups:b": "succeeded",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s, want %s", k, got[k], v)
		}
	}
	if r.did("groups:a") {
		t.Error("groups:a ran although its site's extract failed")
	}
	if res.Status() != ledger.Partial || res.ExitCode() != 1 {
		t.Errorf("run %s exit %d; want partial exit 1", res.Status(), res.ExitCode())
	}
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "extract:moodle:a: site a answered 503") {
		t.Errorf("Err() = %v", err)
	}
	// The skip is in the ledger, with its reason.
	steps, err := ledger.Steps(ctx, db.Pool, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var status, reason string
	for _, s := range steps {
		if s.Key.Stage == "groups" && s.Key.Instance == "a" {
			var detail struct{ Reason string }
			if err := json.Unmarshal(s.Detail, &detail); err != nil {
				t.Fatal(err)
			}
			status, reason = s.Status, detail.Reason
		}
	}
	if status != "skipped" || !strings.Contains(reason, "extract:moodle:a failed") {
		t.Errorf("ledger: groups/a %s (%s)", status, reason)
	}
	// What /metrics shows of it, read from the ledger at scrape time.
	if err := run.Finish(ctx, res.Status(), res.ExitCode(), res.Err()); err != nil {
		t.Fatal(err)
	}
	m := ledgerMetrics(t, db)
	if n := m.value("mim_stage_runs_total", "stage", "extract", "site", "a", "outcome", "failed"); n != 1 {
		t.Errorf("mim_stage_runs_total{extract,a,failed} = %v, want 1", n)
	}
	if n := m.value("mim_stage_runs_total", "stage", "groups", "site", "a", "outcome", "skipped"); n != 1 {
		t.Errorf("mim_stage_runs_total{groups,a,skipped} = %v, want 1", n)
	}
	// The transform succeeded, the extract stage as a whole did not.
	if v := m.value("mim_last_success_timestamp_seconds", "stage", "transform"); v == 0 {
		t.Error("mim_last_success_timestamp_seconds{transform} was not set")
	}
	if v := m.value("mim_last_success_timestamp_seconds", "stage", "extract"); v != 0 {
		t.Error("mim_last_success_timestamp_seconds{extract} was set although a source failed")
	}
	if v := m.value("mim_last_success_timestamp_seconds", "stage", "run"); v != 0 {
		t.Error("a partial run counted as a success")
	}
	if v := m.value("mim_extract_records_total", "source", "moodle", "site", "b", "entity", "things"); v != 10 {
		t.Errorf("mim_extract_records_total{moodle,b,things} = %v, want 10", v)
	}
}

// scrape is one reading of the ledger collector.
type scrape []*dto.MetricFamily

func ledgerMetrics(t *testing.T, db *pgtest.DB) scrape {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(observe.NewLedger(db.Pool))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value is the sample of name whose labels include the given pairs (0 if none).
func (s scrape) value(name string, pairs ...string) float64 {
	for _, f := range s {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(pairs); i += 2 {
				if have[pairs[i]] != pairs[i+1] {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

func TestFailedSITSStopsEverythingDownstream(t *testing.T) {
	db := pgtest.New(t)
	r := &recorder{}
	p, err := New(nightly(r, map[string]error{"extract:sits": errors.New("ORA-12541: no listener")}))
	if err != nil {
		t.Fatal(err)
	}
	res := p.Run(context.Background(), begin(t, db))
	got := statuses(res)
	for _, name := range []string{"transform", "export", "groups:a", "groups:b"} {
		if got[name] != ledger.Skipped || r.did(name) {
			t.Errorf("%s: %s (ran: %v); want skipped", name, got[name], r.did(name))
		}
	}
	if got["extract:moodle:a"] != ledger.Succeeded {
		t.Errorf("a Moodle extract was stopped by SITS: %s", got["extract:moodle:a"])
	}
	if o, _ := res.Outcome("export"); len(o.Lines) == 0 || !strings.Contains(o.Lines[0], "transform skipped") {
		t.Errorf("the export's skip does not say why: %v", o.Lines)
	}
}

func TestRefusalOutranksFailure(t *testing.T) {
	db := pgtest.New(t)
	r := &recorder{}
	p, err := New(nightly(r, map[string]error{
		"export":   &refusal{"threshold: active students fell to 40% of the last export"},
		"groups:b": errors.New("2 writes failed"),
	}))
	if err != nil {
		t.Fatal(err)
	}
	res := p.Run(context.Background(), begin(t, db))
	if res.Status() != ledger.Refused || res.ExitCode() != 3 {
		t.Errorf("status %s exit %d; want refused, 3", res.Status(), res.ExitCode())
	}
	var re *RunError
	if err := res.AsError(); !errors.As(err, &re) || re.ExitCode() != 3 {
		t.Errorf("AsError() = %v", err)
	}
	if !r.did("groups:a") {
		t.Error("a refused export stopped group sync, which does not need it")
	}
}

func TestSourcesRunAtOnce(t *testing.T) {
	db := pgtest.New(t)
	// Each extract waits until all three are running: run one at a time,
	// they would wait for ever (bounded here by the context).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var arrived sync.WaitGroup
	arrived.Add(3)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	barrier := RunnerFunc(func(ctx context.Context, _ *ledger.Run, _ Outcomes) Report {
		arrived.Done()
		select {
		case <-all:
			return Report{}
		case <-ctx.Done():
			return Report{Err: errors.New("the other sources never started")}
		}
	})
	var tasks []Task
	for _, n := range []string{"extract:sits", "extract:cmis", "extract:moodle:a"} {
		tasks = append(tasks, Task{Name: n, Stage: "extract", Runner: barrier})
	}
	p, err := New(tasks)
	if err != nil {
		t.Fatal(err)
	}
	if res := p.Run(ctx, begin(t, db)); res.Status() != ledger.Succeeded {
		t.Fatalf("status %s: %v", res.Status(), res.Err())
	}
}

func TestInterruptedRunSkipsWhatHasNotStarted(t *testing.T) {
	db := pgtest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	tasks := []Task{
		{Name: "extract:sits", Stage: "extract", Runner: RunnerFunc(func(context.Context, *ledger.Run, Outcomes) Report {
			cancel() // Ctrl-C while extracting
			return Report{Status: ledger.Partial}
		})},
		{Name: "transform", Stage: "transform", Needs: []string{"extract:sits"}, Runner: RunnerFunc(func(context.Context, *ledger.Run, Outcomes) Report {
			t.Error("the transform started after the run was interrupted")
			return Report{}
		})},
	}
	p, err := New(tasks)
	if err != nil {
		t.Fatal(err)
	}
	res := p.Run(ctx, begin(t, db))
	if o, _ := res.Outcome("transform"); o.Status != ledger.Skipped || !strings.Contains(o.Lines[0], "interrupted") {
		t.Errorf("transform: %+v", o)
	}
}

func TestNewRefusesBadPlans(t *testing.T) {
	noop := RunnerFunc(func(context.Context, *ledger.Run, Outcomes) Report { return Report{} })
	if _, err := New([]Task{{Name: "a", Runner: noop}, {Name: "a", Runner: noop}}); err == nil {
		t.Error("two tasks with one name were accepted")
	}
	_, err := New([]Task{{Name: "a", Needs: []string{"b"}, Runner: noop}, {Name: "b", After: []string{"a"}, Runner: noop}})
	if err == nil || !strings.Contains(err.Error(), "a → b → a") && !strings.Contains(err.Error(), "b → a → b") {
		t.Errorf("a cycle: %v", err)
	}
	// A need outside the run is dropped: a run of only some stages works.
	p, err := New([]Task{{Name: "groups:a", Needs: []string{"transform", "extract:moodle:a"}, Runner: noop}})
	if err != nil || len(p.Tasks()[0].Needs) != 0 {
		t.Errorf("needs outside the run: %v, %+v", err, p.Tasks())
	}
}

func TestSummaryShapedLikeTheJobMail(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	r := &recorder{}
	run := begin(t, db)
	tasks := nightly(r, map[string]error{"extract:moodle:b": errors.New("site b: invalid token")})
	// The export records its guard decisions, as export/guard does.
	tasks[4].Runner = RunnerFunc(func(ctx context.Context, run *ledger.Run, prior Outcomes) Report {
		if _, err := db.Pool.Exec(ctx, `INSERT INTO ctl.guard_event (run_id, instance, guard, decision, subject, previous, current, percent, limit_value)
			VALUES ($1, 'a', 'threshold', 'passed', 'active_students', 1000, 990, 99.0, 75),
			       ($1, 'a', 'course_drop', 'held', 'ABCD1234-A6U-T1_2-2025', 40, 2, 5.0, 50)`, run.ID); err != nil {
			return Report{Err: err}
		}
		return Report{Lines: []string{"wrote the IMS file for a"}}
	})
	p, err := New(tasks)
	if err != nil {
		t.Fatal(err)
	}
	res := p.Run(ctx, run)
	var b strings.Builder
	if err := WriteSummary(ctx, db.Pool, &b, res, RunInfo{Job: "nightly", Host: "mim-host", Environment: "test", Version: "v9", Location: time.UTC}); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	t.Log(text)
	if !strings.HasPrefix(text, "MIM nightly has completed: run ") {
		t.Errorf("the summary does not open with the outcome: %.80q", text)
	}
	for _, want := range []string{
		"MIM nightly has completed: run ",
		" partial (host mim-host).",
		"---------- Execute nightly (run ",
		"Run commenced at ",
		"Start: ",
		"extract:sits: ",
		"things", // the step's entity with its counts
		"extract:moodle:b: ",
		"error: site b: invalid token",
		"groups:b: skipped",
		"not run: extract:moodle:b failed",
		"wrote the IMS file for a",
		"threshold a active_students: passed (1,000 → 990, 99.0%, limit 75%)",
		"Held courses (drops not sent; check their mappings): a ABCD1234-A6U-T1_2-2025",
		"End: ",
		"---------- Finished nightly (run ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the summary lacks %q:\n%s", want, text)
		}
	}
	if s := Subject(res, RunInfo{Job: "nightly", Environment: "test"}); !strings.HasPrefix(s, "[PARTIAL] MIM nightly on test: run ") {
		t.Errorf("subject %q", s)
	}
	if v := ledgerMetrics(t, db).value("mim_guard_events_total", "site", "a", "guard", "course_drop", "decision", "held"); v != 1 {
		t.Errorf("mim_guard_events_total{a,course_drop,held} = %v", v)
	}
}

// Each limit is written in its own unit: a threshold's percentage, the
// group budget's count of deletions beside its share of owned groups.
func TestGuardFiguresInTheirUnits(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	f64 := func(v float64) *float64 { return &v }
	threshold := GuardEvent{Instance: "main", Guard: "threshold", Decision: "passed", Subject: "active_students",
		Previous: i64(1000), Current: i64(990), Percent: f64(99), Limit: f64(75)}
	if got, want := threshold.String(), "threshold main active_students: passed (1,000 → 990, 99.0%, limit 75%)"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	budget := GuardEvent{Instance: "main", Guard: "group_delete_budget", Decision: "passed", Subject: "deletions",
		Previous: i64(16), Current: i64(2), Percent: f64(6.25), Limit: f64(50),
		Detail: map[string]any{"budget": 50.0, "budget_percent": 10.0, "owned_groups": 16.0, "group_deletes": 1.0, "grouping_deletes": 1.0}}
	want := "group_delete_budget main deletions: passed (deletes 1 group and 1 grouping, 2 in all, limit 50 deletions; 1 of the 16 groups MIM owns, 6.2%, limit 10%)"
	if got := budget.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
