// Package observe holds MIM's Prometheus metrics. Most of them are read from
// the warehouse at scrape time (Ledger: runs, steps, guard decisions, scope
// reads and the Moodle calls every run recorded), so any `mim serve` shows
// every run, whoever made it: a cron'd `mim run`, another daemon, a person.
// The rest are this process's live Moodle request counters, which move while
// a run is still going. Label values never carry secrets: a site is a
// configured name, never a URL or a token. The label is `site`, never
// `instance`, which Prometheus sets to the scrape target.
package observe

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// RequestBuckets are the upper bounds (seconds) of the Moodle request
// latency histograms, live and recorded.
var RequestBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Metrics are the live collectors of one process, on their own registry
// with the Go and process collectors; `mim serve` adds the Ledger to it.
type Metrics struct {
	Registry *prometheus.Registry
	// LiveRequests counts this process's web-service calls by site,
	// function and outcome (ok, moodle_error, transient, throttled, ...).
	LiveRequests *prometheus.CounterVec
	// LiveRequestSeconds is their latency.
	LiveRequestSeconds *prometheus.HistogramVec
}

// NewMetrics creates and registers the live collectors on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		LiveRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mim_live_moodle_requests_total",
			Help: "Moodle web-service calls made by this process, as they happen (mim_moodle_requests_total counts every run's, once recorded).",
		}, []string{"site", "function", "outcome"}),
		LiveRequestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mim_live_moodle_request_seconds",
			Help:    "Latency of the Moodle web-service calls made by this process.",
			Buckets: RequestBuckets,
		}, []string{"site", "function"}),
	}
	m.Registry.MustRegister(m.LiveRequests, m.LiveRequestSeconds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// RequestObserved records one Moodle web-service call; it satisfies the
// observer the moodle client accepts.
func (m *Metrics) RequestObserved(site, function, outcome string, d time.Duration) {
	m.LiveRequests.WithLabelValues(site, function, outcome).Inc()
	m.LiveRequestSeconds.WithLabelValues(site, function).Observe(d.Seconds())
}
