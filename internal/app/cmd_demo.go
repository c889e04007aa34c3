package app

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/demo"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/lti"
	"github.com/mimwarehouse/mim/internal/night"
	"github.com/mimwarehouse/mim/internal/observe"
	"github.com/mimwarehouse/mim/internal/pipeline"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/wire"
)

var demoCommand = Command{
	Name:     "demo",
	Group:    "Operations",
	Summary:  "run MIM end to end on a synthetic university and simulated Moodle sites (no configuration needed)",
	Usage:    "mim demo [--scale small|medium|ucl] [--nights N] [--moodle-db] [--serve] [--listen ADDR] [--out DIR]",
	NoConfig: true,
	Help:     helpText("demo"),
	Setup: func(fs *flag.FlagSet) Runner {
		scale := fs.String("scale", "small", "`size` of the university: small, medium or ucl")
		nights := fs.Int("nights", 1, "how many nightly runs (`N`); Moodle applies the IMS file after each")
		serve := fs.Bool("serve", false, "keep the status page and the simulated sites up until Ctrl-C")
		listen := fs.String("listen", "127.0.0.1:9464", "status page `ADDR` with --serve (port 0: any free port)")
		out := fs.String("out", filepath.Join("out", "demo"), "`DIR` the feeds are written to")
		seed := fs.Uint64("seed", 1, "random `seed` of the synthetic university")
		latency := fs.Duration("latency", 0, "answer every web-service call after `D` (e.g. 20ms, as a real site)")
		year := fs.Int("year", 0, "academic start `YEAR` of the synthetic university (default: the current one, switching in August)")
		moodleDB := fs.Bool("moodle-db", false, "read the Moodle sites from their databases (a copy in the demo database), not their web services")
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) != 0 {
				return Usagef("demo takes no arguments (did you mean --scale %s?)", args[0])
			}
			sc, err := synth.ParseScale(*scale)
			if err != nil {
				return Usagef("--scale: %v", err)
			}
			if *nights < 1 || *nights > 7 {
				return Usagef("--nights must be between 1 and 7")
			}
			if _, _, err := net.SplitHostPort(*listen); err != nil {
				return Usagef("--listen %q is not host:port", *listen)
			}
			return RunDemo(ctx, e, demo.Options{Scale: sc, Nights: *nights, Serve: *serve, Listen: *listen, Out: *out,
				Seed: *seed, Latency: *latency, Year: *year, MoodleDB: *moodleDB})
		}
	},
}

// RunDemo runs the demo (see `mim help demo`) with the commands' own night,
// export, daemon and course staff's tool, printing to e.Stdout.
func RunDemo(ctx context.Context, e *Env, o demo.Options) error {
	// The demo says what happens on stdout; the log keeps to warnings.
	var logTo io.Writer = io.Discard
	if e.Stderr != nil {
		logTo = e.Stderr
	}
	e.Logger = slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var metrics *observe.Metrics
	defer func() { e.pool = nil }() // the demo's own pool: the demo closes it
	return demo.Run(ctx, o, demo.Hooks{
		Out: e.Stdout,
		Start: func(cfg *config.Config, pool *pgxpool.Pool) {
			e.SetConfig(cfg)
			e.pool = pool
			metrics = ServeMetrics(e, pool)
		},
		Night: func(ctx context.Context, w io.Writer) (*pipeline.Result, error) {
			return RunPipeline(ctx, e, RunOptions{Job: "mim demo", Progress: "off", Out: w})
		},
		Export: demoExport,
		Handler: func(tool http.Handler) http.Handler {
			return ServeHandler(e.cfg, e.pool, ServeOptions{Metrics: metrics, LTI: tool})
		},
		LTITool: func(cfg *config.Config, pool *pgxpool.Pool, o lti.Options) (*lti.Tool, error) {
			return wire.LTIToolWith(cfg, pool, e.Logger, o)
		},
	})
}

// demoExport runs an export of cfg under a ledger run of its own.
func demoExport(ctx context.Context, cfg *config.Config, pool *pgxpool.Pool, args []string, o feeds.Options) (*feeds.Summary, error) {
	run, err := ledger.Begin(ctx, pool, "export", cfg.Environment, VersionString(), args)
	if err != nil {
		return nil, err
	}
	sum, err := feeds.New(pool, wire.Feeds(cfg), feeds.WithOperator("mim demo")).Run(ctx, run, o)
	_ = run.Finish(ctx, night.ExportOutcome(sum, err), ExitCode(err), err)
	return sum, err
}
