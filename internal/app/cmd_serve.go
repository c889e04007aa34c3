package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/night"
	"github.com/mimwarehouse/mim/internal/observe"
	"github.com/mimwarehouse/mim/internal/serve"
	"github.com/mimwarehouse/mim/internal/wire"
)

var serveCommand = Command{
	Name:    "serve",
	Group:   "Operations",
	Summary: "the daemon: scheduled runs, /metrics, /healthz and the status page",
	Usage:   "mim serve [--listen ADDR] [--no-schedule]",
	Help:    helpText("serve"),
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
type ServeOptions = serve.Options

// ServeMetrics are what /metrics serves (serve.Metrics); they become e's
// live metrics.
func ServeMetrics(e *Env, pool *pgxpool.Pool) *observe.Metrics {
	e.Metrics = serve.Metrics(pool, e.Logger)
	return e.Metrics
}

// ServeHandler is everything the daemon serves (serve.Handler), reporting
// the configured environment and this version. `mim demo --serve` serves it too.
func ServeHandler(cfg *config.Config, pool *pgxpool.Pool, o ServeOptions) http.Handler {
	o.Environment, o.Version = cfg.Environment, VersionString()
	return serve.Handler(pool, o)
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
	if cfg.Schedule.Intraday != "" {
		jobs = append(jobs, job{name: "intraday", expr: cfg.Schedule.Intraday,
			opts: RunOptions{Job: "intraday", Cycle: night.Intraday, Mail: true, Progress: "log"}})
	}
	return jobs
}

// serveJob is j as the daemon runs it: a `mim run` with the job's options.
func (j job) serveJob(e *Env) serve.Job {
	return serve.Job{Name: j.name, Expr: j.expr, Run: func(ctx context.Context) (*serve.Run, error) {
		res, err := RunPipeline(ctx, e, j.opts)
		if res == nil {
			return nil, err
		}
		return &serve.Run{ID: res.RunID, Status: res.Status()}, err
	}}
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
	var jobs []serve.Job
	for _, j := range serveJobs(cfg) {
		jobs = append(jobs, j.serveJob(e))
	}
	sched, upcoming, err := serve.Start(ctx, pool, e.Logger, jobs, scheduled)
	var se *serve.ScheduleError
	if errors.As(err, &se) {
		return Usagef("%v", se)
	} else if err != nil {
		return err
	}
	so := ServeOptions{Metrics: ServeMetrics(e, pool), Upcoming: upcoming}
	tool, err := wire.LTITool(cfg, pool, e.Logger)
	if err != nil {
		return err
	}
	if tool != nil {
		so.LTI = tool
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", listen, err)
	}
	fmt.Fprintf(e.Stdout, "mim serve: status page http://%s/ (metrics /metrics, health /healthz), environment %s\n", ln.Addr(), cfg.Environment)
	if tool != nil {
		fmt.Fprintf(e.Stdout, "mim serve: LTI tool for course staff at %s (register it in Moodle with %s)\n", cfg.LTI.URL+"/lti/", tool.RegisterURL())
	}
	return serve.Serve(ctx, ln, ServeHandler(cfg, pool, so), sched, e.Logger)
}
