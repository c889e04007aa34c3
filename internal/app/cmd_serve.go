package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/observe"
	"github.com/mimwarehouse/mim/internal/schedule"
	"github.com/mimwarehouse/mim/internal/statuspage"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/internal/wire"
)

var serveCommand = Command{
	Name:    "serve",
	Group:   "Operations",
	Summary: "the daemon: scheduled runs, /metrics, /healthz and the status page",
	Usage:   "mim serve [--listen ADDR] [--no-schedule]",
	Help: `Serves on serve.listen (default 127.0.0.1:9464):
  /          the status page: last runs and their steps, guard decisions and
             override state, held courses, drift per site, the schedule, and
             charts of counts over time (plain HTML, nothing loaded from
             elsewhere)
  /runs/ID   one run's steps and guard decisions
  /metrics   Prometheus metrics (mim_* on their own registry, plus Go and
             process metrics)
  /healthz   200 when the warehouse answers, 503 otherwise (JSON)
  /lti/      with lti.url set: the LTI 1.3 tool through which course staff
             map their own Moodle courses (mim help lti)

and runs the schedules:
  schedule.nightly  a full mim run (summary mailed)
  schedule.groups   extract CMIS, transform, group sync (no mail)
unless mim pause holds them: a time that comes during a pause is recorded as
held and not run (mim resume releases them; the status page and /metrics,
mim_schedule_paused, show the pause).
Five-field cron expressions; "CRON_TZ=Europe/London 15 0 * * *" names the zone
(else the host's). Over a daylight-saving change a job at a fixed time runs
once, and one in the skipped hour runs when the clock jumps.

Runs never overlap: a time that comes while a run holds the warehouse run lock
(this daemon's, a manual mim run, another daemon's) is skipped and recorded. A
time that passed while the daemon was down is recorded as missed when it
starts (not run: run mim run by hand if it is needed). Both show on the status
page and in ctl.schedule_event.

SIGINT or SIGTERM stops the daemon; a run in progress is interrupted and
recorded as failed.`,
	Setup: func(fs *flag.FlagSet) Runner {
		listen := fs.String("listen", "", "listen on `ADDR` (host:port) instead of serve.listen")
		noSchedule := fs.Bool("no-schedule", false, "serve the pages and metrics only; run nothing")
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) != 0 {
				return Usagef("serve takes no arguments")
			}
			return runServe(ctx, e, *listen, !*noSchedule)
		}
	},
}

// ServeOptions configure the HTTP side of the daemon.
type ServeOptions struct {
	Metrics  *observe.Metrics
	Upcoming func() []schedule.Upcoming
	// LTI is the course staff's tool, served under /lti/ (nil: off).
	LTI http.Handler
}

// ServeMetrics are what /metrics serves: this process's live Moodle calls,
// and everything the warehouse's ledger knows, read at scrape time, so runs
// made by any process show. They become e's live metrics.
func ServeMetrics(e *Env, pool *pgxpool.Pool) *observe.Metrics {
	m := observe.NewMetrics()
	m.Registry.MustRegister(observe.NewLedger(pool, observe.WithLedgerLogger(e.Logger)))
	e.Metrics = m
	return m
}

// ServeHandler is everything the daemon serves: the status page, /metrics
// and /healthz. `mim demo --serve` serves it too.
func ServeHandler(cfg *config.Config, pool *pgxpool.Pool, o ServeOptions) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Metrics.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { healthz(w, r, cfg, pool) })
	page := statuspage.New(pool, statuspage.Options{Environment: cfg.Environment, Version: VersionString(), Upcoming: o.Upcoming,
		Pending: func(ctx context.Context) ([]statuspage.Pending, error) { return pendingRows(ctx, pool) }})
	mux.Handle("/", page)
	if o.LTI != nil {
		mux.Handle("/lti/", o.LTI)
	}
	return mux
}

func healthz(w http.ResponseWriter, r *http.Request, cfg *config.Config, pool *pgxpool.Pool) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	body := map[string]any{"environment": cfg.Environment, "version": VersionString()}
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

// job is one scheduled kind of run.
type job struct {
	name string
	expr string
	opts RunOptions
}

// serveJobs are the runs the configuration schedules.
func serveJobs(cfg *config.Config) []job {
	var jobs []job
	if cfg.Schedule.Nightly != "" {
		jobs = append(jobs, job{name: "nightly", expr: cfg.Schedule.Nightly,
			opts: RunOptions{Job: "nightly", Mail: true, Progress: "log"}})
	}
	if cfg.Schedule.Groups != "" {
		o := RunOptions{Job: "groups", Stages: []string{StageTransform, StageGroups}, Progress: "log"}
		if cfg.Sources.CMIS != nil {
			// Fresh timetable groups; the rest of raw is the night's.
			o.Stages = []string{StageExtract, StageTransform, StageGroups}
			o.Sources = []string{"cmis"}
		}
		jobs = append(jobs, job{name: "groups", expr: cfg.Schedule.Groups, opts: o})
	}
	return jobs
}

func runServe(ctx context.Context, e *Env, listen string, scheduled bool) error {
	cfg, err := e.Config()
	if err != nil {
		return err
	}
	if listen == "" {
		listen = cfg.Serve.Listen
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return Usagef("--listen %q is not host:port", listen)
	}
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return err
	}
	if n, err := warehouse.Pending(ctx, pool); err != nil {
		return err
	} else if n > 0 {
		e.Logger.Warn("the warehouse schema is behind this mim: scheduled runs will fail until `mim migrate`", "pending", n)
	}
	metrics := ServeMetrics(e, pool)

	var sched *schedule.Scheduler
	if scheduled {
		if sched, err = newScheduler(ctx, e, cfg, pool); err != nil {
			return err
		}
	}
	upcoming := func() []schedule.Upcoming { return nil }
	if sched != nil {
		upcoming = sched.Upcoming
	}
	tool, err := wire.LTITool(cfg, pool, e.Logger)
	if err != nil {
		return err
	}
	so := ServeOptions{Metrics: metrics, Upcoming: upcoming}
	if tool != nil {
		so.LTI = tool
	}
	srv := &http.Server{Handler: ServeHandler(cfg, pool, so),
		ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(e.Logger.Handler(), slog.LevelWarn)}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", listen, err)
	}
	fmt.Fprintf(e.Stdout, "mim serve: status page http://%s/ (metrics /metrics, health /healthz), environment %s\n", ln.Addr(), cfg.Environment)
	if tool != nil {
		fmt.Fprintf(e.Stdout, "mim serve: LTI tool for course staff at %s (register it in Moodle with %s)\n", cfg.LTI.URL+"/lti/", tool.RegisterURL())
	}

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 2)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serving on %s: %w", listen, err)
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
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	stop()
	e.Logger.Info("mim serve stopping")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	<-done
	return err
}

// newScheduler builds the scheduler of the configured jobs, recording every
// event in ctl.schedule_event, and records the times missed while the
// daemon was down.
func newScheduler(ctx context.Context, e *Env, cfg *config.Config, pool *pgxpool.Pool) (*schedule.Scheduler, error) {
	host, _ := os.Hostname()
	var jobs []schedule.Job
	specs := map[string]*schedule.Schedule{}
	for _, j := range serveJobs(cfg) {
		spec, err := schedule.Parse(j.expr, time.Local)
		if err != nil {
			return nil, Usagef("schedule.%s: %v", j.name, err)
		}
		specs[j.name] = spec
		jobs = append(jobs, schedule.Job{Name: j.name, Schedule: spec, Run: func(ctx context.Context, due time.Time) error {
			return runScheduled(ctx, e, pool, host, j, spec, due)
		}})
		if err := recordMissed(ctx, e, pool, host, j.name, spec, time.Now()); err != nil {
			e.Logger.Warn("checking for missed runs", "job", j.name, "error", err)
		}
	}
	if len(jobs) == 0 {
		e.Logger.Info("no schedule configured (schedule.nightly, schedule.groups): serving pages and metrics only")
	}
	return schedule.New(jobs, schedule.WithEvents(func(ev schedule.Event) {
		switch ev.Kind {
		case schedule.Skipped, schedule.Missed:
			e.Logger.Warn("scheduled run "+ev.Kind, "job", ev.Job, "due", ev.Due, "note", ev.Note)
			recordScheduleEvent(e, pool, host, ev.Job, specs[ev.Job].String(), ev.Due, ev.Kind, nil, "", ev.Note)
		}
	}))
}

// runScheduled runs one due job: a `mim run` with the job's options.
func runScheduled(ctx context.Context, e *Env, pool *pgxpool.Pool, host string, j job, spec *schedule.Schedule, due time.Time) error {
	// mim pause may have been run by anyone since the last time: ask the
	// warehouse each time. If it cannot say, the run goes ahead and meets
	// the same warehouse (and its lock) anyway.
	if p, err := schedule.CurrentPause(ctx, pool); err != nil {
		e.Logger.Warn("reading whether the schedules are paused", "job", j.name, "error", err)
	} else if p != nil {
		e.Logger.Warn("scheduled run held: the schedules are paused", "job", j.name, "due", due, "paused_by", p.By, "reason", p.Reason)
		recordScheduleEvent(e, pool, host, j.name, spec.String(), due, schedule.Held, nil, "", "schedules "+p.String()+"; mim resume releases them")
		return nil
	}
	e.Logger.Info("scheduled run starting", "job", j.name, "due", due)
	recordScheduleEvent(e, pool, host, j.name, spec.String(), due, schedule.Started, nil, "", "")
	res, err := RunPipeline(ctx, e, j.opts)
	var locked *warehouse.LockedError
	switch {
	case errors.As(err, &locked):
		e.Logger.Warn("scheduled run skipped: another run holds the lock", "job", j.name, "due", due, "holder", locked.Holder)
		recordScheduleEvent(e, pool, host, j.name, spec.String(), due, schedule.Skipped, nil, "", locked.Error())
		return nil
	case res == nil:
		e.Logger.Error("scheduled run did not start", "job", j.name, "due", due, "error", err)
		recordScheduleEvent(e, pool, host, j.name, spec.String(), due, schedule.Finished, nil, ledger.Failed, "did not start: "+err.Error())
		return err
	}
	e.Logger.Info("scheduled run finished", "job", j.name, "run_id", res.RunID, "status", res.Status())
	recordScheduleEvent(e, pool, host, j.name, spec.String(), due, schedule.Finished, &res.RunID, res.Status(), "")
	return err
}

func recordScheduleEvent(e *Env, pool *pgxpool.Pool, host, job, expr string, due time.Time, kind string, runID *int64, status, note string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := pool.Exec(ctx, `INSERT INTO ctl.schedule_event (job, schedule, due_at, kind, run_id, status, note, host)
		VALUES ($1, $2, $3, $4, $5, NULLIF($6, ''), NULLIF($7, ''), $8)`, job, expr, due, kind, runID, status, note, host)
	if err != nil {
		e.Logger.Error("recording a schedule event", "job", job, "kind", kind, "error", err)
	}
}

// recordMissed records, once, the times a job was due while no daemon was
// running: those after the last time a scheduler handled it. A job never
// handled before has missed nothing.
func recordMissed(ctx context.Context, e *Env, pool *pgxpool.Pool, host, name string, spec *schedule.Schedule, now time.Time) error {
	var last *time.Time
	if err := pool.QueryRow(ctx, `SELECT max(due_at) FROM ctl.schedule_event WHERE job = $1`, name).Scan(&last); err != nil {
		return err
	}
	if last == nil {
		// First start: note the schedule so the next start can tell what it missed.
		recordScheduleEvent(e, pool, host, name, spec.String(), now, schedule.Started, nil, "", "the scheduler started; nothing run")
		return nil
	}
	latest, n := spec.Missed(*last, now)
	if n == 0 {
		return nil
	}
	note := fmt.Sprintf("%d time(s) passed while mim serve was not running (%s ago last handled); not run: start mim run by hand if needed",
		n, sinceRound(*last))
	e.Logger.Warn("scheduled run missed", "job", name, "due", latest, "missed", n)
	recordScheduleEvent(e, pool, host, name, spec.String(), latest, schedule.Missed, nil, "", note)
	return nil
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
