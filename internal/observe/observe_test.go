package observe

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsAreRegisteredWithDesignNames(t *testing.T) {
	m := NewMetrics()
	m.RequestObserved("main", "core_user_get_users", "ok", 20*time.Millisecond)
	m.RequestObserved("main", "core_user_get_users", "ok", 30*time.Millisecond)
	m.ExtractRecords.WithLabelValues("moodle", "main", "users").Add(7)
	m.StageDone("extract", 3*time.Second, true)
	m.GuardEvents.WithLabelValues("threshold", "refused").Inc()
	if got := testutil.ToFloat64(m.MoodleRequests.WithLabelValues("main", "core_user_get_users", "ok")); got != 2 {
		t.Errorf("requests = %v", got)
	}
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	for _, want := range []string{"mim_extract_records_total", "mim_moodle_requests_total", "mim_moodle_request_seconds",
		"mim_stage_seconds", "mim_guard_events_total", "mim_last_success_timestamp_seconds", "go_goroutines"} {
		if !names[want] {
			t.Errorf("metric %s not gathered", want)
		}
	}
	if n, err := testutil.GatherAndCount(m.Registry, "mim_stage_seconds"); err != nil || n != 1 {
		t.Errorf("stage gauge: %d %v", n, err)
	}
	if v := testutil.ToFloat64(m.LastSuccess.WithLabelValues("extract")); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success = %v", v)
	}
}
