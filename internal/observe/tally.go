package observe

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Tally adds up the Moodle web-service calls a process makes until they are
// saved under the run that made them (SaveRequests), so the calls of a run
// made by any process reach /metrics through the ledger. It satisfies the
// moodle client's observer and is safe for concurrent use.
type Tally struct {
	mu    sync.Mutex
	stats map[requestKey]*RequestStat
}

type requestKey struct{ site, function, outcome string }

// RequestStat is the calls of one site, function and outcome.
type RequestStat struct {
	Site, Function, Outcome string
	Requests                int64
	Seconds                 float64 // their total time
	// Buckets are cumulative counts of calls at or under each of
	// RequestBuckets.
	Buckets []int64
}

// NewTally returns an empty tally.
func NewTally() *Tally { return &Tally{stats: map[requestKey]*RequestStat{}} }

// RequestObserved counts one call.
func (t *Tally) RequestObserved(site, function, outcome string, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := requestKey{site, function, outcome}
	s := t.stats[k]
	if s == nil {
		s = &RequestStat{Site: site, Function: function, Outcome: outcome, Buckets: make([]int64, len(RequestBuckets))}
		t.stats[k] = s
	}
	s.Requests++
	s.Seconds += d.Seconds()
	for i, le := range RequestBuckets {
		if d.Seconds() <= le {
			s.Buckets[i]++
		}
	}
}

// Drain returns what was counted since the last Drain, in a stable order,
// and starts again from nothing.
func (t *Tally) Drain() []RequestStat {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]RequestStat, 0, len(t.stats))
	for _, s := range t.stats {
		out = append(out, *s)
	}
	t.stats = map[requestKey]*RequestStat{}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Site != b.Site {
			return a.Site < b.Site
		}
		if a.Function != b.Function {
			return a.Function < b.Function
		}
		return a.Outcome < b.Outcome
	})
	return out
}

// Execer is what SaveRequests writes with (a pool or a transaction).
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// SaveRequests records stats under run runID in ctl.moodle_request (adding
// to what the run already recorded, so it may be called more than once).
func SaveRequests(ctx context.Context, q Execer, runID int64, stats []RequestStat) error {
	for _, s := range stats {
		_, err := q.Exec(ctx, `
			INSERT INTO ctl.moodle_request AS m (run_id, site, function, outcome, requests, seconds, le, buckets)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (run_id, site, function, outcome) DO UPDATE SET
				requests = m.requests + EXCLUDED.requests,
				seconds = m.seconds + EXCLUDED.seconds,
				buckets = CASE WHEN m.le = EXCLUDED.le
					THEN ARRAY(SELECT a + b FROM unnest(m.buckets, EXCLUDED.buckets) AS u(a, b))
					ELSE EXCLUDED.buckets END,
				le = EXCLUDED.le`,
			runID, s.Site, s.Function, s.Outcome, s.Requests, s.Seconds, RequestBuckets, s.Buckets)
		if err != nil {
			return fmt.Errorf("recording the Moodle calls of run %d (%s %s): %w", runID, s.Site, s.Function, err)
		}
	}
	return nil
}

// RequestObserver is what counts a Moodle web-service call (it satisfies
// the moodle client's observer, as Tally and Metrics do).
type RequestObserver interface {
	RequestObserved(site, function, outcome string, d time.Duration)
}

// Observers counts every call in each of its observers, in order.
type Observers []RequestObserver

// RequestObserved counts one call in each observer.
func (os Observers) RequestObserved(site, function, outcome string, d time.Duration) {
	for _, o := range os {
		o.RequestObserved(site, function, outcome, d)
	}
}
