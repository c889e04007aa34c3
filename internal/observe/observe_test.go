package observe_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/observe"
	"github.com/mimwarehouse/mim/internal/pgtest"
)

func TestLiveMetricsUseTheSiteLabel(t *testing.T) {
	m := observe.NewMetrics()
	m.RequestObserved("main", "core_user_get_users", "ok", 20*time.Millisecond)
	m.RequestObserved("main", "core_user_get_users", "ok", 30*time.Millisecond)
	if got := testutil.ToFloat64(m.LiveRequests.WithLabelValues("main", "core_user_get_users", "ok")); got != 2 {
		t.Errorf("requests = %v", got)
	}
	want := `
# HELP mim_live_moodle_requests_total Moodle web-service calls made by this process, as they happen (mim_moodle_requests_total counts every run's, once recorded).
# TYPE mim_live_moodle_requests_total counter
mim_live_moodle_requests_total{function="core_user_get_users",outcome="ok",site="main"} 2
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "mim_live_moodle_requests_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(m.Registry, "go_goroutines"); err != nil || n != 1 {
		t.Errorf("go collector: %d %v", n, err)
	}
}

func TestTallyDrains(t *testing.T) {
	tl := observe.NewTally()
	tl.RequestObserved("b", "f", "ok", 5*time.Millisecond)
	tl.RequestObserved("a", "f", "ok", 300*time.Millisecond)
	tl.RequestObserved("a", "f", "ok", 2*time.Second)
	tl.RequestObserved("a", "f", "transient", 70*time.Second)
	got := tl.Drain()
	if len(got) != 3 || got[0].Site != "a" || got[0].Outcome != "ok" || got[2].Site != "b" {
		t.Fatalf("%+v", got)
	}
	a := got[0]
	if a.Requests != 2 || a.Seconds < 2.29 || a.Seconds > 2.31 {
		t.Errorf("%+v", a)
	}
	// Cumulative: 0.3 s is under 0.5 and every bound above; 2 s under 2.5.
	for i, le := range observe.RequestBuckets {
		want := int64(0)
		if le >= 0.5 {
			want++
		}
		if le >= 2.5 {
			want++
		}
		if a.Buckets[i] != want {
			t.Errorf("bucket le=%v: %d, want %d", le, a.Buckets[i], want)
		}
	}
	// 70 s is over every bound: counted, in no bucket.
	if got[1].Requests != 1 || got[1].Buckets[len(observe.RequestBuckets)-1] != 0 {
		t.Errorf("%+v", got[1])
	}
	if again := tl.Drain(); len(again) != 0 {
		t.Errorf("a drained tally still holds %+v", again)
	}
}

// TestLedgerShowsWhatTheWarehouseRecorded fills the ledger the way runs of
// other processes do and reads it back through the collector.
func TestLedgerShowsWhatTheWarehouseRecorded(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	step := func(run *ledger.Run, k ledger.StepKey, status string, c ledger.Counts) {
		t.Helper()
		s, err := run.Step(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Finish(ctx, status, c, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Run 1 succeeds; run 2's Moodle site is partial and its groups refused;
	// run 3 is still going.
	r1, _ := ledger.Begin(ctx, db.Pool, "run", "test", "v", nil)
	step(r1, ledger.StepKey{Stage: "extract", Source: "sits", Instance: "sits", Entity: "student"}, ledger.Succeeded, ledger.Counts{In: 100, New: 100})
	step(r1, ledger.StepKey{Stage: "extract", Source: "moodle", Instance: "main", Entity: "users"}, ledger.Succeeded, ledger.Counts{In: 40, New: 40})
	step(r1, ledger.StepKey{Stage: "transform", Entity: "stg.sits_student"}, ledger.Succeeded, ledger.Counts{In: 100})
	step(r1, ledger.StepKey{Stage: "transform", Entity: "mart.dim_person"}, ledger.Succeeded, ledger.Counts{In: 90})
	if err := r1.Finish(ctx, ledger.Succeeded, 0, nil); err != nil {
		t.Fatal(err)
	}
	r2, _ := ledger.Begin(ctx, db.Pool, "run", "test", "v", nil)
	step(r2, ledger.StepKey{Stage: "extract", Source: "sits", Instance: "sits", Entity: "student"}, ledger.Succeeded, ledger.Counts{In: 101, New: 1, Unchanged: 100})
	step(r2, ledger.StepKey{Stage: "extract", Source: "moodle", Instance: "main", Entity: "users"}, ledger.Partial, ledger.Counts{In: 39, Deleted: 1, Errors: 2})
	step(r2, ledger.StepKey{Stage: "groups", Source: "moodle", Instance: "main", Entity: "apply"}, ledger.Refused, ledger.Counts{})
	if err := r2.Finish(ctx, ledger.Refused, 3, nil); err != nil {
		t.Fatal(err)
	}
	r3, _ := ledger.Begin(ctx, db.Pool, "run", "test", "v", nil)
	step(r3, ledger.StepKey{Stage: "extract", Source: "sits", Instance: "sits", Entity: "student"}, ledger.Succeeded, ledger.Counts{In: 5})
	t.Cleanup(func() { _ = r3.Finish(context.Background(), ledger.Failed, 1, nil) })

	for _, sql := range []string{
		`INSERT INTO ctl.guard_event (run_id, instance, guard, decision) VALUES (2, 'main', 'group_delete_budget', 'refused'),
		 (1, 'main', 'threshold', 'passed'), (2, 'main', 'threshold', 'passed')`,
		`INSERT INTO raw.scope_read (source, instance, entity, scope, complete_run, failed_run, error) VALUES
		 ('moodle', 'main', 'enrolments', '7', 1, NULL, NULL), ('moodle', 'main', 'enrolments', '8', 1, 2, 'timeout'),
		 ('moodle', 'main', 'enrolments', '9', 2, 1, 'old failure')`,
		`INSERT INTO ctl.schedule_pause (paused_by, reason) VALUES ('ops@host', 'rollover')`,
	} {
		if _, err := db.Pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	tl := observe.NewTally()
	tl.RequestObserved("main", "core_user_get_users", "ok", 20*time.Millisecond)
	tl.RequestObserved("main", "core_user_get_users", "transient", 3*time.Second)
	if err := observe.SaveRequests(ctx, db.Pool, r1.ID, tl.Drain()); err != nil {
		t.Fatal(err)
	}
	tl.RequestObserved("main", "core_user_get_users", "ok", 40*time.Millisecond)
	for range 2 { // saved twice under one run: added, not replaced
		if err := observe.SaveRequests(ctx, db.Pool, r2.ID, tl.Drain()); err != nil {
			t.Fatal(err)
		}
		tl.RequestObserved("main", "core_user_get_users", "ok", 40*time.Millisecond)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(observe.NewLedger(db.Pool))
	want := `
# HELP mim_extract_records_total Records read from sources by source, site (the Moodle site, or the source's name) and entity.
# TYPE mim_extract_records_total counter
mim_extract_records_total{entity="student",site="sits",source="sits"} 206
mim_extract_records_total{entity="users",site="main",source="moodle"} 79
# HELP mim_extract_errors_total Rows that extracts could not read (reported, not landed) by source, site and entity.
# TYPE mim_extract_errors_total counter
mim_extract_errors_total{entity="student",site="sits",source="sits"} 0
mim_extract_errors_total{entity="users",site="main",source="moodle"} 2
# HELP mim_guard_events_total Guard decisions by site, guard and decision (passed, refused, overridden, held).
# TYPE mim_guard_events_total counter
mim_guard_events_total{decision="passed",guard="threshold",site="main"} 2
mim_guard_events_total{decision="refused",guard="group_delete_budget",site="main"} 1
# HELP mim_runs_total Finished MIM runs (any process: mim run, schedules, single stages) by command and status.
# TYPE mim_runs_total counter
mim_runs_total{command="run",status="refused"} 1
mim_runs_total{command="run",status="succeeded"} 1
# HELP mim_runs_running MIM runs in progress by command.
# TYPE mim_runs_running gauge
mim_runs_running{command="run"} 1
# HELP mim_scopes Scopes of raw (a Moodle course's enrolments, a whole SITS entity) by the state of their last read: complete, or failing (the last read failed; the rows are as last read).
# TYPE mim_scopes gauge
mim_scopes{entity="enrolments",site="main",source="moodle",state="complete"} 2
mim_scopes{entity="enrolments",site="main",source="moodle",state="failing"} 1
# HELP mim_schedule_paused 1 while mim pause holds mim serve's schedules, else 0.
# TYPE mim_schedule_paused gauge
mim_schedule_paused 1
# HELP mim_ledger_up 1 when the warehouse's ledger could be read for this scrape, 0 when it could not (the other mim_ series are then missing).
# TYPE mim_ledger_up gauge
mim_ledger_up 1
# HELP mim_moodle_requests_total Moodle web-service calls recorded by finished runs, by site, function and outcome.
# TYPE mim_moodle_requests_total counter
mim_moodle_requests_total{function="core_user_get_users",outcome="ok",site="main"} 3
mim_moodle_requests_total{function="core_user_get_users",outcome="transient",site="main"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "mim_extract_records_total", "mim_extract_errors_total",
		"mim_guard_events_total", "mim_runs_total", "mim_runs_running", "mim_scopes", "mim_schedule_paused", "mim_ledger_up",
		"mim_moodle_requests_total"); err != nil {
		t.Error(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string, pairs ...string) (float64, bool) {
		for _, f := range fams {
			if f.GetName() != name {
				continue
			}
		next:
			for _, m := range f.GetMetric() {
				have := map[string]string{}
				for _, l := range m.GetLabel() {
					have[l.GetName()] = l.GetValue()
				}
				for i := 0; i < len(pairs); i += 2 {
					if have[pairs[i]] != pairs[i+1] {
						continue next
					}
				}
				switch {
				case m.Counter != nil:
					return m.GetCounter().GetValue(), true
				case m.Gauge != nil:
					return m.GetGauge().GetValue(), true
				case m.Histogram != nil:
					return float64(m.GetHistogram().GetSampleCount()), true
				}
			}
		}
		return 0, false
	}
	// Stages of finished runs only: run 3's extract is not counted yet.
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"stage", "extract", "site", "sits", "outcome", "succeeded"}, 2},
		{[]string{"stage", "extract", "site", "main", "outcome", "succeeded"}, 1},
		{[]string{"stage", "extract", "site", "main", "outcome", "partial"}, 1},
		{[]string{"stage", "groups", "site", "main", "outcome", "refused"}, 1},
		{[]string{"stage", "transform", "outcome", "succeeded"}, 1},
	} {
		if v, _ := get("mim_stage_runs_total", c.labels...); v != c.want {
			t.Errorf("mim_stage_runs_total%v = %v, want %v", c.labels, v, c.want)
		}
	}
	// The extract stage last succeeded (or was partial) in run 2; groups
	// never did; the last successful mim run is run 1.
	if v, _ := get("mim_last_success_timestamp_seconds", "stage", "extract"); v < float64(r2.Started.Unix()) {
		t.Errorf("extract last success %v, before run 2 started", v)
	}
	if _, ok := get("mim_last_success_timestamp_seconds", "stage", "groups"); ok {
		t.Error("groups never succeeded but has a last success")
	}
	if v, _ := get("mim_last_success_timestamp_seconds", "stage", "run"); v == 0 || v > float64(time.Now().Unix()+1) {
		t.Errorf("run last success %v", v)
	}
	if _, ok := get("mim_stage_seconds", "stage", "transform"); !ok {
		t.Error("no mim_stage_seconds{stage=transform}")
	}
	if n, _ := get("mim_moodle_request_seconds", "site", "main", "function", "core_user_get_users"); n != 4 {
		t.Errorf("latency histogram holds %v calls, want 4", n)
	}
	// What Prometheus itself would say of the exposition.
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

// A warehouse that cannot be read is mim_ledger_up 0, not an empty page.
func TestLedgerDown(t *testing.T) {
	db := pgtest.New(t)
	db.Pool.Close()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(observe.NewLedger(db.Pool))
	want := `
# HELP mim_ledger_up 1 when the warehouse's ledger could be read for this scrape, 0 when it could not (the other mim_ series are then missing).
# TYPE mim_ledger_up gauge
mim_ledger_up 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
