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
	Help: `Runs every stage under one ledger run, holding the warehouse run lock (a second
run refuses to start):

  extract    every configured source at once (SITS, CMIS, each Moodle site
             within its own rate and concurrency), each into raw on its own
  transform  staging and marts in one checked transaction
  export     the IMS Enterprise file, profile CSV, tutor table and merge list
             of every site, behind the threshold and per-course guards
  groups     timetable group sync of every site with group-sync courses,
             behind the environment guard and the delete budget
  catalog    the marts' descriptions to CKAN (only when catalog.url is set)

A stage's failure stops what depends on it and nothing else. A source's
extract fails when any of its entities could not be landed (raw keeps that
entity's last good state); bad rows within max_bad_rows_percent, or Moodle
courses that could not be read (kept as they were), make it partial, which
does not stop anything.
  - the transform needs SITS and CMIS to have been read (a failed SIS
    extract leaves yesterday's marts and everything downstream alone); a
    Moodle site whose extract failed does not stop it (raw keeps that site's
    last good state, and the site is left out below);
  - the export needs the transform, and leaves out the sites whose extract
    failed (their accounts and courses were not read tonight);
  - a site's group sync needs the transform and that site's extract;
  - the catalog needs the transform.
A skipped stage is recorded in the ledger with the reason.

At the end a summary shaped like the old job mail (each stage with its times,
status and counts per site and entity, every guard decision, held courses)
is printed and mailed to notify.to when notify.smtp is configured.

--stages limits the run (e.g. --stages transform,export); --source limits
the extract to some sources (sits, cmis, moodle:NAME, or moodle).

--cycle intraday runs the day's short cycle instead (mim serve runs it at
schedule.intraday): SITS and CMIS only (no Moodle site is read: the
warehouse keeps the night's Moodle state), the transform, and each site's
enrolment delta (its IMS file, or its flat file) only: no group sync, no
profile CSV, tutor table, merge list, OneRoster or catalog. It takes the same
run lock and every guard of the night (threshold, per course, completeness,
environment), is recorded in the ledger as an intraday run (mim status and
/metrics tell the two apart), and mails its summary only when a guard
refused or the run failed. --stages may name only its stages.

While mim pause holds the schedules, a run started by hand goes ahead and
says so; with --if-not-paused it does nothing and exits 0 (for a run that
cron starts, so that the pause holds it as it holds mim serve's).

Exit status: 0 everything succeeded (a partial extract, e.g. a course that
could not be read, is reported but is not a failure), 1 a stage failed or was
skipped because one failed, 3 a guard refused something (threshold, delete
budget, environment): a person must look before the next night.`,
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
