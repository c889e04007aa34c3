// Package serve is the daemon of `mim serve`: the HTTP side (the status
// page, /metrics, /healthz and the LTI tool), the configured jobs run on
// their schedules with every event recorded in the warehouse, and the
// server's life from listening to a clean shutdown.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/observe"
	"github.com/mimwarehouse/mim/internal/schedule"
	"github.com/mimwarehouse/mim/internal/statuspage"
)

// Options configure the HTTP side of the daemon.
type Options struct {
	// Environment and Version are what the pages and /healthz report.
	Environment, Version string
	Metrics              *observe.Metrics
	Upcoming             func() []schedule.Upcoming
	// LTI is the course staff's tool, served under /lti/ (nil: off).
	LTI http.Handler
}

// Metrics are what /metrics serves: this process's live Moodle calls, and
// everything the warehouse's ledger knows, read at scrape time, so runs
// made by any process show.
func Metrics(pool *pgxpool.Pool, logger *slog.Logger) *observe.Metrics {
	m := observe.NewMetrics()
	m.Registry.MustRegister(observe.NewLedger(pool, observe.WithLedgerLogger(logger)))
	return m
}

// Handler is everything the daemon serves: the status page, /metrics and
// /healthz, and the LTI tool when there is one.
func Handler(pool *pgxpool.Pool, o Options) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Metrics.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { healthz(w, r, o, pool) })
	page := statuspage.New(pool, statuspage.Options{Environment: o.Environment, Version: o.Version, Upcoming: o.Upcoming,
		Pending: func(ctx context.Context) ([]statuspage.Pending, error) { return pendingRows(ctx, pool) }})
	mux.Handle("/", page)
	if o.LTI != nil {
		mux.Handle("/lti/", o.LTI)
	}
	return mux
}

func healthz(w http.ResponseWriter, r *http.Request, o Options, pool *pgxpool.Pool) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	body := map[string]any{"environment": o.Environment, "version": o.Version}
	status := http.StatusOK
	if err := pool.Ping(ctx); err != nil {
		status = http.StatusServiceUnavailable
		body["status"], body["database"] = "unavailable", "the warehouse does not answer"
	} else {
		body["status"], body["database"] = "ok", "ok"
		if t, err := ledger.LastSuccess(ctx, pool, "run"); err == nil && !t.IsZero() {
			body["last_successful_run"] = t.UTC().Format(time.RFC3339)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// pendingRows is the status page's view of feeds.PendingReport.
func pendingRows(ctx context.Context, pool *pgxpool.Pool) ([]statuspage.Pending, error) {
	rep, err := feeds.PendingReport(ctx, pool)
	if err != nil {
		return nil, err
	}
	out := make([]statuspage.Pending, len(rep))
	for i, p := range rep {
		out[i] = statuspage.Pending{Instance: p.Instance, Feed: string(p.Feed), Count: p.Count, Long: p.Long, Nights: p.Nights,
			Oldest: p.Oldest, Cause: p.Cause, Examples: p.Examples}
	}
	return out, nil
}

// Serve serves h on ln and runs sched (nil: none) until ctx ends or the
// server fails, then shuts both down, giving requests in flight ten seconds.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, sched *schedule.Scheduler, logger *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 2)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serving on %s: %w", ln.Addr(), err)
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if sched != nil {
			_ = sched.Run(ctx)
		} else {
			<-ctx.Done()
		}
	}()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	stop()
	logger.Info("mim serve stopping")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	<-done
	return err
}
