package app

import (
	"context"
	"errors"
	"flag"

	"github.com/mimwarehouse/mim/internal/catalog"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/night"
	"github.com/mimwarehouse/mim/internal/pipeline"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/moodle"
)

// Stages of a run, in order (see internal/night).
const (
	StageExtract   = night.StageExtract
	StageTransform = night.StageTransform
	StageExport    = night.StageExport
	StageGroups    = night.StageGroups
	StageCatalog   = night.StageCatalog
)

var runCommand = Command{
	Name:    "run",
	Group:   "Pipeline",
	Summary: "the nightly run: extract → transform → export and group sync, under one run id",
	Usage:   "mim run [--cycle nightly|intraday] [--stages LIST] [--source NAME]... [--no-mail] [--progress log|off] [--if-not-paused]",
	Help:    helpText("run"),
	Setup: func(fs *flag.FlagSet) Runner {
		var stages, sources []string
		cycle := fs.String("cycle", night.Nightly, "`CYCLE`: nightly (every stage) or intraday (SITS, CMIS, transform, enrolment delta)")
		fs.Func("stages", "run only these `STAGES` (extract, transform, export, groups, catalog; comma-separated)", listFlag(&stages))
		fs.Func("source", "extract only source `NAME` (sits, cmis, moodle:SITE, or moodle); repeatable", listFlag(&sources))
		noMail := fs.Bool("no-mail", false, "do not mail the summary")
		mode := fs.String("progress", "log", "extract progress: log (a line per entity every 30 seconds) or off")
		ifNotPaused := fs.Bool("if-not-paused", false, "do nothing (exit 0) while mim pause holds the schedules: for a run started by cron")
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) != 0 {
				return Usagef("run takes no arguments (did you mean --stages %s?)", args[0])
			}
			if *mode != "log" && *mode != "off" {
				return Usagef("--progress %q is not log or off", *mode)
			}
			pause := night.PauseNote
			if *ifNotPaused {
				pause = night.PauseObey
			}
			_, err := RunPipeline(ctx, e, RunOptions{Cycle: *cycle, Stages: stages, Sources: sources, Mail: !*noMail, Progress: *mode, Pause: pause})
			if errors.Is(err, night.ErrHeld) {
				return nil
			}
			return err
		}
	},
}

// RunOptions choose what one run does (see night.Options).
type RunOptions = night.Options

// RunPipeline runs the stages under one ledger run and returns what
// happened (nil if the run could not start). The error is a
// *pipeline.RunError carrying the exit code, or why the run did not start
// (another run holds the lock: a *warehouse.LockedError).
func RunPipeline(ctx context.Context, e *Env, o RunOptions) (*pipeline.Result, error) {
	ne, err := nightEnv(e)
	if err != nil {
		return nil, err
	}
	if o.Out == nil {
		o.Out = e.Stdout
	}
	res, err := night.Run(ctx, ne, o)
	return res, usage(err)
}

// nightEnv is what the night is built from: this command's configuration,
// warehouse, logger and Moodle clients.
func nightEnv(e *Env) (*night.Env, error) {
	cfg, err := e.Config()
	if err != nil {
		return nil, err
	}
	return &night.Env{Config: cfg, Warehouse: e.Warehouse, Logger: e.Logger, Stderr: e.Stderr,
		Operator: Who(), Version: VersionString(), Args: e.Args,
		MoodleClient: func(site *config.MoodleSite, opts ...moodle.Option) (*moodle.Client, error) {
			return MoodleClient(e, site, opts...)
		},
		SaveRequests: func(ctx context.Context, q warehouse.Querier, runID int64) { saveRequests(ctx, e, q, runID) },
		PublishCatalog: func(ctx context.Context, q warehouse.Querier, run *ledger.Run) ([]catalog.Published, error) {
			return publishCatalog(ctx, e, q, run)
		},
	}, nil
}

// usage makes the night's usage error this command's (exit 2 and the
// command's usage shown).
func usage(err error) error {
	var ue *night.UsageError
	if errors.As(err, &ue) {
		return &UsageError{Msg: ue.Msg}
	}
	return err
}
