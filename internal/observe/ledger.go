package observe

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// Querier is what the Ledger reads the warehouse with (a pool).
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Ledger is a Prometheus collector that reads the warehouse at scrape time:
// ctl.run, ctl.run_step, ctl.guard_event, raw.scope_read, ctl.moodle_request
// and ctl.schedule_pause. Counters are sums over the whole ledger, so they
// only grow while the ledger is kept; a run still going counts once it has
// finished (its extract steps as each finishes).
type Ledger struct {
	q       Querier
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
func NewLedger(q Querier, opts ...LedgerOption) *Ledger {
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
	var command, status string
	var n float64
	return c.scan(ctx, "ctl.run", `SELECT command, status, count(*)::float8 FROM ctl.run GROUP BY 1, 2`,
		[]any{&command, &status, &n}, func() {
			if status == "running" {
				emit(descRunning, prometheus.GaugeValue, n, command)
			} else {
				emit(descRuns, prometheus.CounterValue, n, command, status)
			}
		})
}

// stageSQL gives each stage of each finished run one outcome per site (the
// worst of its steps), its last success and its last duration.
const stageSQL = `
WITH task AS (
	SELECT s.run_id, s.stage, s.instance AS site,
		CASE WHEN bool_or(s.status IN ('failed', 'running')) THEN 'failed'
		     WHEN bool_or(s.status = 'refused') THEN 'refused'
		     WHEN bool_or(s.status = 'partial') THEN 'partial'
		     WHEN bool_and(s.status = 'skipped') THEN 'skipped'
		     ELSE 'succeeded' END AS outcome,
		min(s.started_at) FILTER (WHERE s.status <> 'skipped') AS started,
		max(s.finished_at) FILTER (WHERE s.status <> 'skipped') AS finished
	FROM ctl.run_step s JOIN ctl.run r ON r.run_id = s.run_id
	WHERE r.status <> 'running'
	GROUP BY 1, 2, 3
), stage_run AS (
	SELECT run_id, stage, bool_and(outcome IN ('succeeded', 'partial')) AS ok, min(started) AS started, max(finished) AS finished
	FROM task GROUP BY 1, 2
)
SELECT 'runs', stage, site, outcome, count(*)::float8 FROM task GROUP BY 2, 3, 4
UNION ALL
SELECT 'success', stage, '', '', extract(epoch FROM max(finished) FILTER (WHERE ok))::float8
FROM stage_run GROUP BY stage HAVING bool_or(ok AND finished IS NOT NULL)
UNION ALL
(SELECT DISTINCT ON (stage) 'seconds', stage, '', '', extract(epoch FROM finished - started)::float8
 FROM stage_run WHERE started IS NOT NULL AND finished IS NOT NULL ORDER BY stage, run_id DESC)
`

// runSQL is the whole mim run's last success and last duration.
const runSQL = `
SELECT 'success', extract(epoch FROM max(finished_at))::float8 FROM ctl.run WHERE command = 'run' AND status = 'succeeded'
HAVING max(finished_at) IS NOT NULL
UNION ALL
(SELECT 'seconds', extract(epoch FROM finished_at - started_at)::float8 FROM ctl.run
 WHERE command = 'run' AND finished_at IS NOT NULL ORDER BY run_id DESC LIMIT 1)
`

func (c *Ledger) stages(ctx context.Context, emit emitFunc) error {
	var kind, stage, site, outcome string
	var v float64
	err := c.scan(ctx, "the stages of runs", stageSQL, []any{&kind, &stage, &site, &outcome, &v}, func() {
		switch kind {
		case "runs":
			emit(descStageRuns, prometheus.CounterValue, v, stage, site, outcome)
		case "success":
			emit(descLastSuccess, prometheus.GaugeValue, v, stage)
		case "seconds":
			emit(descStageSeconds, prometheus.GaugeValue, v, stage)
		}
	})
	if err != nil {
		return err
	}
	return c.scan(ctx, "the last runs", runSQL, []any{&kind, &v}, func() {
		if kind == "success" {
			emit(descLastSuccess, prometheus.GaugeValue, v, "run")
		} else {
			emit(descStageSeconds, prometheus.GaugeValue, v, "run")
		}
	})
}

func (c *Ledger) extracts(ctx context.Context, emit emitFunc) error {
	var source, site, entity string
	var in, added, changed, deleted, errs float64
	return c.scan(ctx, "the extract steps", `
		SELECT source, instance, entity, sum(rows_in)::float8, sum(rows_new)::float8, sum(rows_changed)::float8,
		       sum(rows_deleted)::float8, sum(errors)::float8
		FROM ctl.run_step WHERE stage = 'extract' AND entity <> '' AND finished_at IS NOT NULL
		GROUP BY 1, 2, 3`,
		[]any{&source, &site, &entity, &in, &added, &changed, &deleted, &errs}, func() {
			emit(descRecords, prometheus.CounterValue, in, source, site, entity)
			emit(descChanges, prometheus.CounterValue, added, source, site, entity, "new")
			emit(descChanges, prometheus.CounterValue, changed, source, site, entity, "changed")
			emit(descChanges, prometheus.CounterValue, deleted, source, site, entity, "deleted")
			emit(descExtractErrors, prometheus.CounterValue, errs, source, site, entity)
		})
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
