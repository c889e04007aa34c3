package observe

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Ledger is a Prometheus collector that reads the warehouse at scrape time:
// the run ledger (internal/ledger's totals), ctl.guard_event, raw.scope_read,
// ctl.moodle_request and ctl.schedule_pause. Counters are sums over the whole ledger, so they
// only grow while the ledger is kept; a run still going counts once it has
// finished (its extract steps as each finishes).
type Ledger struct {
	q       warehouse.Querier
	logger  *slog.Logger
	timeout time.Duration
	maxAge  time.Duration

	mu      sync.Mutex
	at      time.Time
	metrics []prometheus.Metric
}

// LedgerOption configures a Ledger.
type LedgerOption func(*Ledger)

// WithLedgerLogger logs a scrape the warehouse could not answer.
func WithLedgerLogger(l *slog.Logger) LedgerOption { return func(c *Ledger) { c.logger = l } }

// WithLedgerCache reuses one reading for scrapes within d (default 5 s),
// so several scrapers cost the warehouse one reading.
func WithLedgerCache(d time.Duration) LedgerOption { return func(c *Ledger) { c.maxAge = d } }

// NewLedger returns the collector over the warehouse q.
func NewLedger(q warehouse.Querier, opts ...LedgerOption) *Ledger {
	c := &Ledger{q: q, logger: slog.New(slog.DiscardHandler), timeout: 10 * time.Second, maxAge: 5 * time.Second}
	for _, o := range opts {
		o(c)
	}
	return c
}

var (
	descUp = prometheus.NewDesc("mim_ledger_up",
		"1 when the warehouse's ledger could be read for this scrape, 0 when it could not (the other mim_ series are then missing).", nil, nil)
	descRuns = prometheus.NewDesc("mim_runs_total",
		"Finished MIM runs (any process: mim run, schedules, single stages) by command and status.", []string{"command", "status"}, nil)
	descRunning = prometheus.NewDesc("mim_runs_running",
		"MIM runs in progress by command.", []string{"command"}, nil)
	descLastSuccess = prometheus.NewDesc("mim_last_success_timestamp_seconds",
		"Unix time each stage last ended succeeded or partial (stage \"run\": the last mim run that succeeded).", []string{"stage"}, nil)
	descStageSeconds = prometheus.NewDesc("mim_stage_seconds",
		"How long each stage took in the last run that had it (stage \"run\": the last mim run).", []string{"stage"}, nil)
	descStageRuns = prometheus.NewDesc("mim_stage_runs_total",
		"Stages of finished runs by stage, site (or source) and outcome: succeeded, partial, failed, refused or skipped.",
		[]string{"stage", "site", "outcome"}, nil)
	descRecords = prometheus.NewDesc("mim_extract_records_total",
		"Records read from sources by source, site (the Moodle site, or the source's name) and entity.",
		[]string{"source", "site", "entity"}, nil)
	descChanges = prometheus.NewDesc("mim_extract_changes_total",
		"Records that extracts found new, changed or deleted, by source, site and entity.",
		[]string{"source", "site", "entity", "change"}, nil)
	descExtractErrors = prometheus.NewDesc("mim_extract_errors_total",
		"Rows that extracts could not read (reported, not landed) by source, site and entity.",
		[]string{"source", "site", "entity"}, nil)
	descGuards = prometheus.NewDesc("mim_guard_events_total",
		"Guard decisions by site, guard and decision (passed, refused, overridden, held).",
		[]string{"site", "guard", "decision"}, nil)
	descScopes = prometheus.NewDesc("mim_scopes",
		"Scopes of raw (a Moodle course's enrolments, a whole SITS entity) by the state of their last read: complete, or failing (the last read failed; the rows are as last read).",
		[]string{"source", "site", "entity", "state"}, nil)
	descRequests = prometheus.NewDesc("mim_moodle_requests_total",
		"Moodle web-service calls recorded by finished runs, by site, function and outcome.", []string{"site", "function", "outcome"}, nil)
	descRequestSeconds = prometheus.NewDesc("mim_moodle_request_seconds",
		"Latency of the Moodle web-service calls recorded by runs.", []string{"site", "function"}, nil)
	descPaused = prometheus.NewDesc("mim_schedule_paused",
		"1 while mim pause holds mim serve's schedules, else 0.", nil, nil)
)

// Describe sends every descriptor.
func (c *Ledger) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descRuns, descRunning, descLastSuccess, descStageSeconds, descStageRuns,
		descRecords, descChanges, descExtractErrors, descGuards, descScopes, descRequests, descRequestSeconds, descPaused} {
		ch <- d
	}
}

// Collect reads the ledger (or reuses a reading younger than the cache).
func (c *Ledger) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.metrics == nil || time.Since(c.at) > c.maxAge {
		c.metrics, c.at = c.read(), time.Now()
	}
	for _, m := range c.metrics {
		ch <- m
	}
}

// read runs every query; a failure makes mim_ledger_up 0 and drops the rest,
// so a half-read ledger never looks like counters that went backwards.
func (c *Ledger) read() []prometheus.Metric {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	var out []prometheus.Metric
	emit := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, t, v, labels...))
	}
	for _, read := range []func(context.Context, func(*prometheus.Desc, prometheus.ValueType, float64, ...string)) error{
		c.runs, c.stages, c.extracts, c.guards, c.scopes, c.paused,
	} {
		if err := read(ctx, emit); err != nil {
			c.logger.Warn("reading the ledger for /metrics", "error", err)
			return []prometheus.Metric{prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)}
		}
	}
	hists, err := c.requests(ctx, emit)
	if err != nil {
		c.logger.Warn("reading the ledger for /metrics", "error", err)
		return []prometheus.Metric{prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)}
	}
	out = append(out, hists...)
	return append(out, prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1))
}

type emitFunc = func(*prometheus.Desc, prometheus.ValueType, float64, ...string)

// scan runs sql and hands each row to row.
func (c *Ledger) scan(ctx context.Context, what, sql string, dest []any, row func()) error {
	rows, err := c.q.Query(ctx, sql)
	if err != nil {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("reading %s: %w", what, err)
		}
		row()
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	return nil
}

func (c *Ledger) runs(ctx context.Context, emit emitFunc) error {
	counts, err := ledger.RunCounts(ctx, c.q)
	if err != nil {
		return err
	}
	for _, rc := range counts {
		if rc.Status == ledger.Running {
			emit(descRunning, prometheus.GaugeValue, float64(rc.Runs), rc.Command)
		} else {
			emit(descRuns, prometheus.CounterValue, float64(rc.Runs), rc.Command, rc.Status)
		}
	}
	return nil
}

func (c *Ledger) stages(ctx context.Context, emit emitFunc) error {
	st, err := ledger.Stages(ctx, c.q)
	if err != nil {
		return err
	}
	for _, o := range st.Outcomes {
		emit(descStageRuns, prometheus.CounterValue, float64(o.Runs), o.Stage, o.Site, o.Outcome)
	}
	for _, v := range st.LastSuccess {
		emit(descLastSuccess, prometheus.GaugeValue, v.Value, v.Stage)
	}
	for _, v := range st.LastSeconds {
		emit(descStageSeconds, prometheus.GaugeValue, v.Value, v.Stage)
	}
	return nil
}

func (c *Ledger) extracts(ctx context.Context, emit emitFunc) error {
	totals, err := ledger.ExtractTotals(ctx, c.q)
	if err != nil {
		return err
	}
	for _, t := range totals {
		n := t.Counts
		emit(descRecords, prometheus.CounterValue, float64(n.In), t.Source, t.Instance, t.Entity)
		emit(descChanges, prometheus.CounterValue, float64(n.New), t.Source, t.Instance, t.Entity, "new")
		emit(descChanges, prometheus.CounterValue, float64(n.Changed), t.Source, t.Instance, t.Entity, "changed")
		emit(descChanges, prometheus.CounterValue, float64(n.Deleted), t.Source, t.Instance, t.Entity, "deleted")
		emit(descExtractErrors, prometheus.CounterValue, float64(n.Errors), t.Source, t.Instance, t.Entity)
	}
	return nil
}

func (c *Ledger) guards(ctx context.Context, emit emitFunc) error {
	var site, guard, decision string
	var n float64
	return c.scan(ctx, "ctl.guard_event", `SELECT instance, guard, decision, count(*)::float8 FROM ctl.guard_event GROUP BY 1, 2, 3`,
		[]any{&site, &guard, &decision, &n}, func() { emit(descGuards, prometheus.CounterValue, n, site, guard, decision) })
}

func (c *Ledger) scopes(ctx context.Context, emit emitFunc) error {
	var source, site, entity string
	var complete, failing float64
	return c.scan(ctx, "raw.scope_read", `
		SELECT source, instance, entity,
		       count(*) FILTER (WHERE NOT failing)::float8, count(*) FILTER (WHERE failing)::float8
		FROM (SELECT source, instance, entity, failed_run IS NOT NULL AND failed_run > coalesce(complete_run, 0) AS failing
		      FROM raw.scope_read) s
		GROUP BY 1, 2, 3`,
		[]any{&source, &site, &entity, &complete, &failing}, func() {
			emit(descScopes, prometheus.GaugeValue, complete, source, site, entity, "complete")
			emit(descScopes, prometheus.GaugeValue, failing, source, site, entity, "failing")
		})
}

func (c *Ledger) paused(ctx context.Context, emit emitFunc) error {
	var n float64
	return c.scan(ctx, "ctl.schedule_pause", `SELECT count(*)::float8 FROM ctl.schedule_pause WHERE resumed_at IS NULL`,
		[]any{&n}, func() { emit(descPaused, prometheus.GaugeValue, min(n, 1)) })
}

// requests emits the call counters and returns the latency histograms.
func (c *Ledger) requests(ctx context.Context, emit emitFunc) ([]prometheus.Metric, error) {
	var site, function, outcome string
	var n, secs float64
	err := c.scan(ctx, "ctl.moodle_request", `SELECT site, function, outcome, sum(requests)::float8, sum(seconds) FROM ctl.moodle_request GROUP BY 1, 2, 3`,
		[]any{&site, &function, &outcome, &n, &secs}, func() { emit(descRequests, prometheus.CounterValue, n, site, function, outcome) })
	if err != nil {
		return nil, err
	}
	type hist struct {
		count   uint64
		sum     float64
		buckets map[float64]uint64
	}
	hs := map[[2]string]*hist{}
	var order [][2]string
	var le float64
	var count, inBucket int64
	err = c.scan(ctx, "the Moodle call latencies", `
		SELECT m.site, m.function, sum(m.requests)::bigint, sum(m.seconds), u.le, sum(u.n)::bigint
		FROM ctl.moodle_request m, unnest(m.le, m.buckets) AS u(le, n)
		GROUP BY m.site, m.function, u.le ORDER BY 1, 2, 5`,
		[]any{&site, &function, &count, &secs, &le, &inBucket}, func() {
			k := [2]string{site, function}
			h := hs[k]
			if h == nil {
				h = &hist{count: uint64(count), sum: secs, buckets: map[float64]uint64{}}
				hs[k] = h
				order = append(order, k)
			}
			h.buckets[le] = uint64(inBucket)
		})
	if err != nil {
		return nil, err
	}
	out := make([]prometheus.Metric, 0, len(order))
	for _, k := range order {
		h := hs[k]
		out = append(out, prometheus.MustNewConstHistogram(descRequestSeconds, h.count, h.sum, h.buckets, k[0], k[1]))
	}
	return out, nil
}
