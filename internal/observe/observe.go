// Package observe holds MIM's Prometheus metrics, on a dedicated registry so
// `mim serve` exposes exactly these (plus Go and process collectors) and
// tests can create as many independent sets as they like. Label values never
// carry secrets: instance is a site name, never a URL or a token.
package observe

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the collectors every stage reports to.
type Metrics struct {
	Registry *prometheus.Registry
	// ExtractRecords counts records read, by source, instance and entity.
	ExtractRecords *prometheus.CounterVec
	// MoodleRequests counts web-service calls by outcome
	// (ok, moodle_error, transient, throttled, ...).
	MoodleRequests *prometheus.CounterVec
	// MoodleRequestSeconds is the latency of web-service calls.
	MoodleRequestSeconds *prometheus.HistogramVec
	// StageSeconds is how long the last run of each stage took.
	StageSeconds *prometheus.GaugeVec
	// GuardEvents counts guard decisions (threshold, course_drop, ...).
	GuardEvents *prometheus.CounterVec
	// LastSuccess is the Unix time each stage last succeeded.
	LastSuccess *prometheus.GaugeVec
}

// NewMetrics creates and registers the collectors on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		ExtractRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mim_extract_records_total", Help: "Records read from sources.",
		}, []string{"source", "instance", "entity"}),
		MoodleRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mim_moodle_requests_total", Help: "Moodle web-service requests by outcome.",
		}, []string{"instance", "function", "outcome"}),
		MoodleRequestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mim_moodle_request_seconds", Help: "Moodle web-service request latency.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"instance", "function"}),
		StageSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mim_stage_seconds", Help: "Duration of the last run of each stage.",
		}, []string{"stage"}),
		GuardEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mim_guard_events_total", Help: "Guard decisions by guard and decision.",
		}, []string{"guard", "decision"}),
		LastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mim_last_success_timestamp_seconds", Help: "Unix time each stage last succeeded.",
		}, []string{"stage"}),
	}
	m.Registry.MustRegister(m.ExtractRecords, m.MoodleRequests, m.MoodleRequestSeconds, m.StageSeconds,
		m.GuardEvents, m.LastSuccess,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// RequestObserved records one Moodle web-service call; it satisfies the
// observer the moodle client accepts.
func (m *Metrics) RequestObserved(instance, function, outcome string, d time.Duration) {
	m.MoodleRequests.WithLabelValues(instance, function, outcome).Inc()
	m.MoodleRequestSeconds.WithLabelValues(instance, function).Observe(d.Seconds())
}

// StageDone records a stage's duration, and its success time when ok.
func (m *Metrics) StageDone(stage string, d time.Duration, ok bool) {
	m.StageSeconds.WithLabelValues(stage).Set(d.Seconds())
	if ok {
		m.LastSuccess.WithLabelValues(stage).SetToCurrentTime()
	}
}
