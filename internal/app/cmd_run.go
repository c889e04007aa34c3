package app

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/export/groupsync"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/envguard"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/notify"
	"github.com/mimwarehouse/mim/internal/pipeline"
	"github.com/mimwarehouse/mim/internal/progress"
	"github.com/mimwarehouse/mim/internal/schedule"
	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/transform"
)

// Stages of a run, in order.
const (
	StageExtract   = "extract"
	StageTransform = "transform"
	StageExport    = "export"
	StageGroups    = "groups"
	StageCatalog   = "catalog"
)

// AllStages are the stages a run has unless told otherwise.
var AllStages = []string{StageExtract, StageTransform, StageExport, StageGroups, StageCatalog}

var runCommand = Command{
	Name:    "run",
	Group:   "Pipeline",
	Summary: "the nightly run: extract → transform → export and group sync, under one run id",
	Usage:   "mim run [--stages LIST] [--source NAME]... [--no-mail] [--progress log|off] [--if-not-paused]",
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

While mim pause holds the schedules, a run started by hand goes ahead and
says so; with --if-not-paused it does nothing and exits 0 (for a run that
cron starts, so that the pause holds it as it holds mim serve's).

Exit status: 0 everything succeeded (a partial extract, e.g. a course that
could not be read, is reported but is not a failure), 1 a stage failed or was
skipped because one failed, 3 a guard refused something (threshold, delete
budget, environment): a person must look before the next night.`,
	Setup: func(fs *flag.FlagSet) Runner {
		var stages, sources []string
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
			pause := PauseNote
			if *ifNotPaused {
				pause = PauseObey
			}
			_, err := RunPipeline(ctx, e, RunOptions{Job: "mim run", Stages: stages, Sources: sources, Mail: !*noMail, Progress: *mode, Pause: pause})
			if errors.Is(err, errHeld) {
				return nil
			}
			return err
		}
	},
}

// What a run does while mim pause holds the schedules.
const (
	// PauseIgnore: nothing (the scheduler asked already; the demo).
	PauseIgnore = ""
	// PauseNote: the run goes ahead and says the schedules are paused (a
	// run started by hand).
	PauseNote = "note"
	// PauseObey: the run does not start (mim run --if-not-paused, by cron).
	PauseObey = "obey"
)

// errHeld is a run that did not start because the schedules are paused.
var errHeld = errors.New("held: the schedules are paused")

// checkPause applies o.Pause; errHeld means the run must not start.
func checkPause(ctx context.Context, pool *pgxpool.Pool, o RunOptions) error {
	if o.Pause == PauseIgnore {
		return nil
	}
	p, err := schedule.CurrentPause(ctx, pool)
	if err != nil || p == nil {
		return err
	}
	if o.Pause == PauseObey {
		fmt.Fprintf(o.Out, "not running: the schedules are %s (mim resume releases them)\n", p)
		return errHeld
	}
	fmt.Fprintf(o.Out, "note: the schedules are %s; this run was started by hand and goes ahead\n", p)
	return nil
}

// RunOptions choose what one run does.
type RunOptions struct {
	// Job names the run in its summary: "mim run", or the schedule's job.
	Job string
	// Stages limits the run; empty means AllStages.
	Stages []string
	// Sources limits the extract; empty means every configured source.
	Sources []string
	// Mail sends the summary to notify.to when mail is configured.
	Mail bool
	// Progress is the extract's progress display: log or off.
	Progress string
	// Out receives progress lines and the summary (default e.Stdout).
	Out io.Writer
	// Pause is what the run does while mim pause holds the schedules:
	// PauseIgnore, PauseNote or PauseObey.
	Pause string
}

// RunPipeline runs the stages under one ledger run and returns what
// happened (nil if the run could not start). The error is a
// *pipeline.RunError carrying the exit code, or why the run did not start
// (another run holds the lock: a *warehouse.LockedError).
func RunPipeline(ctx context.Context, e *Env, o RunOptions) (*pipeline.Result, error) {
	cfg, err := e.Config()
	if err != nil {
		return nil, err
	}
	if o.Out == nil {
		o.Out = e.Stdout
	}
	if o.Job == "" {
		o.Job = "mim run"
	}
	if len(o.Stages) == 0 {
		o.Stages = AllStages
	}
	for _, s := range o.Stages {
		if !slices.Contains(AllStages, s) {
			return nil, Usagef("--stages: %q is not a stage (stages: %s)", s, strings.Join(AllStages, ", "))
		}
	}
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return nil, err
	}
	if n, err := warehouse.Pending(ctx, pool); err != nil {
		return nil, err
	} else if n > 0 {
		return nil, fmt.Errorf("the warehouse schema is behind this mim (%d migration(s) pending): run `mim migrate` first", n)
	}
	if err := checkPause(ctx, pool, o); err != nil {
		return nil, err
	}
	tasks, err := runTasks(ctx, e, cfg, pool, o)
	if err != nil {
		return nil, err
	}
	opts := []pipeline.Option{pipeline.WithLogger(e.Logger), pipeline.WithProgress(o.Out)}
	p, err := pipeline.New(tasks, opts...)
	if err != nil {
		return nil, err
	}
	run, err := ledger.Begin(ctx, pool, "run", cfg.Environment, VersionString(), e.Args)
	if err != nil {
		return nil, fmt.Errorf("starting the run: %w", err)
	}
	defer run.Finish(ctx, ledger.Failed, ExitFailure, errors.New("interrupted"))
	fmt.Fprintf(o.Out, "run %d: %s\n", run.ID, taskNames(tasks))
	// An override armed longer ago than override_hours has lapsed: say so
	// before any guard looks at it.
	if lapsed, err := settings.LapseExpired(ctx, pool, Who()); err != nil {
		e.Logger.Warn("lapsing expired overrides", "run_id", run.ID, "error", err)
	} else if len(lapsed) > 0 {
		fmt.Fprintf(o.Out, "lapsed unused (armed more than override_hours ago): %s\n", strings.Join(lapsed, ", "))
	}
	res := p.Run(ctx, run)

	// /metrics reads the ledger; the Moodle calls go there too.
	wctx := context.WithoutCancel(ctx)
	saveRequests(wctx, e, pool, run.ID)
	var summary bytes.Buffer
	host, _ := os.Hostname()
	info := pipeline.RunInfo{Job: o.Job, Host: host, Environment: cfg.Environment, Version: VersionString()}
	if err := pipeline.WriteSummary(wctx, pool, &summary, res, info); err != nil {
		fmt.Fprintf(&summary, "(the summary could not be read from the ledger: %v)\n", err)
	}
	fmt.Fprintf(o.Out, "\n%s", summary.String())
	if o.Mail {
		mailSummary(wctx, e, cfg, run, pipeline.Subject(res, info), summary.String(), o.Out)
	}
	runErr := res.AsError()
	if err := run.Finish(wctx, res.Status(), res.ExitCode(), res.Err()); err != nil && runErr == nil {
		return res, err
	}
	return res, runErr
}

func taskNames(tasks []pipeline.Task) string {
	var names []string
	for _, t := range tasks {
		names = append(names, t.Name)
	}
	return strings.Join(names, ", ")
}

// mailSummary sends the summary; mail that cannot go is a notify step
// failed in the ledger and a line in the output, not a failed run.
func mailSummary(ctx context.Context, e *Env, cfg *config.Config, run *ledger.Run, subject, body string, out io.Writer) {
	if cfg.Notify.SMTP.Host == "" {
		return
	}
	mailer, err := notify.New(wire.Notify(cfg))
	if err == nil {
		err = mailer.Send(ctx, notify.Message{Subject: subject, Body: body})
	}
	step, serr := run.Step(ctx, ledger.StepKey{Stage: "notify", Entity: "summary"})
	if serr == nil {
		_ = step.Finish(ctx, ledger.Outcome(err), ledger.Counts{In: 1}, map[string]any{"to": cfg.Notify.To}, err)
	}
	if err != nil {
		fmt.Fprintf(out, "the summary mail was not sent: %v\n", err)
		e.Logger.Warn("sending the run summary", "run_id", run.ID, "error", err)
		return
	}
	fmt.Fprintf(out, "summary mailed to %s\n", strings.Join(cfg.Notify.To, ", "))
}

// runTasks builds the run's tasks from the stages asked for. Sources are
// opened here, before the run starts, so a mistake is a usage error.
func runTasks(ctx context.Context, e *Env, cfg *config.Config, pool *pgxpool.Pool, o RunOptions) ([]pipeline.Task, error) {
	want := func(s string) bool { return slices.Contains(o.Stages, s) }
	var tasks []pipeline.Task
	var sisExtracts, siteExtracts []string
	if want(StageExtract) {
		sel, err := SelectSources(cfg, o.Sources, nil)
		if err != nil {
			return nil, err
		}
		for _, s := range sel {
			x, err := PrepareExtract(ctx, e, ExtractOptions{Sources: []string{s.Name}, Progress: o.Progress})
			if err != nil {
				return nil, err
			}
			kind, inst := SourceKind(s.Name)
			name := "extract:" + s.Name
			if kind == "moodle" {
				siteExtracts = append(siteExtracts, name)
			} else {
				sisExtracts = append(sisExtracts, name)
			}
			tasks = append(tasks, pipeline.Task{Name: name, Stage: StageExtract, Source: kind, Instance: inst,
				Runner: pipeline.RunnerFunc(func(ctx context.Context, run *ledger.Run, _ pipeline.Outcomes) pipeline.Report {
					out, err := x.Run(ctx, run)
					rep := pipeline.Report{Err: err}
					switch {
					case err != nil:
						// An entity that did not land keeps yesterday's rows:
						// the source was not read tonight, whatever else landed.
						// A suspect read (the completeness guard), or a site
						// that redirected elsewhere (the environment guard), is
						// refused.
						rep.Status = ledger.Outcome(err)
					case out != nil:
						// Partial: every entity landed, with bad rows or Moodle
						// courses that could not be read (kept as they were).
						rep.Status = out.Status()
						if rep.Status == ledger.Failed {
							rep.Err = errors.New("nothing landed")
						}
					}
					return rep
				})})
		}
	}
	if want(StageTransform) {
		tasks = append(tasks, pipeline.Task{Name: "transform", Stage: StageTransform, Needs: sisExtracts, After: siteExtracts,
			Runner: pipeline.RunnerFunc(func(ctx context.Context, run *ledger.Run, _ pipeline.Outcomes) pipeline.Report {
				return transformStage(ctx, e, cfg, pool, run)
			})})
	}
	if want(StageExport) {
		tasks = append(tasks, pipeline.Task{Name: "export", Stage: StageExport, Needs: []string{"transform"}, After: siteExtracts,
			Runner: pipeline.RunnerFunc(func(ctx context.Context, run *ledger.Run, prior pipeline.Outcomes) pipeline.Report {
				return exportStage(ctx, e, cfg, pool, run, prior)
			})})
	}
	if want(StageGroups) {
		for i := range cfg.Moodle {
			site := &cfg.Moodle[i]
			tasks = append(tasks, pipeline.Task{Name: "groups:" + site.Name, Stage: StageGroups, Source: "moodle", Instance: site.Name,
				Needs: []string{"transform", "extract:moodle:" + site.Name},
				Runner: pipeline.RunnerFunc(func(ctx context.Context, run *ledger.Run, _ pipeline.Outcomes) pipeline.Report {
					return groupsStage(ctx, e, cfg, pool, run, site)
				})})
		}
	}
	if want(StageCatalog) && cfg.Catalog.URL != "" {
		tasks = append(tasks, pipeline.Task{Name: "catalog", Stage: StageCatalog, Needs: []string{"transform"},
			Runner: pipeline.RunnerFunc(func(ctx context.Context, run *ledger.Run, _ pipeline.Outcomes) pipeline.Report {
				res, err := publishCatalog(ctx, e, pool, run)
				var created, updated int
				for _, r := range res {
					switch r.Action {
					case "created":
						created++
					case "updated":
						updated++
					}
				}
				rep := pipeline.Report{Err: err, Lines: []string{fmt.Sprintf("%s created, %d updated in %s",
					progress.Counted(int64(created), "dataset", "datasets"), updated, cfg.Catalog.URL)}}
				if err != nil && created+updated > 0 {
					rep.Status = ledger.Partial
				}
				return rep
			})})
	}
	if len(tasks) == 0 {
		return nil, Usagef("nothing to run: the stages asked for (%s) have nothing configured", strings.Join(o.Stages, ", "))
	}
	return tasks, nil
}

func transformStage(ctx context.Context, e *Env, cfg *config.Config, pool *pgxpool.Pool, run *ledger.Run) pipeline.Report {
	p, err := transform.LoadEmbedded()
	if err != nil {
		return pipeline.Report{Err: err}
	}
	res, err := transform.Run(ctx, pool, p, transform.Options{
		Run: run, StatementTimeout: cfg.Warehouse.StatementTimeout, LockTimeout: cfg.Warehouse.LockTimeout,
		Logger: e.Logger, Hooks: transformHooks(cfg, Who(), run.ID),
	})
	rep := pipeline.Report{Err: err}
	if res != nil && res.Committed && err != nil {
		// The marts are the truth: they committed, only the bookkeeping
		// failed, so what depends on them goes ahead.
		rep.Status = ledger.Partial
	}
	if res != nil {
		var rows int64
		for _, m := range res.Models {
			rows += max(m.Rows, 0)
		}
		verb := "committed"
		if !res.Committed {
			verb = "rolled back; every mart keeps what the last good run left"
		}
		rep.Lines = append(rep.Lines, fmt.Sprintf("%s, %s, %s (%s failed): %s",
			progress.Counted(int64(len(res.Models)), "model", "models"), progress.Counted(rows, "row", "rows"),
			progress.Counted(int64(res.Checked), "check or test", "checks and tests"), progress.Count(int64(len(res.Failures))), verb))
		for _, h := range res.Hooks {
			rep.Lines = append(rep.Lines, fmt.Sprintf("hook %s: %s", h.Name, h.Summary))
		}
	}
	return rep
}

// exportStage exports every site whose extract did not fail.
func exportStage(ctx context.Context, e *Env, cfg *config.Config, pool *pgxpool.Pool, run *ledger.Run, prior pipeline.Outcomes) pipeline.Report {
	var sites, left []string
	for _, m := range cfg.Moodle {
		if o, ran := prior["extract:moodle:"+m.Name]; ran && !o.OK() {
			left = append(left, m.Name)
			continue
		}
		sites = append(sites, m.Name)
	}
	var lines []string
	if len(left) > 0 {
		lines = append(lines, fmt.Sprintf("left out, their extract failed tonight: %s", strings.Join(left, ", ")))
	}
	if len(sites) == 0 {
		// Instances empty would mean every site: there is nothing to do.
		return pipeline.Report{Status: ledger.Skipped, Lines: append(lines, "no site to export")}
	}
	mailer, err := notify.New(wire.Notify(cfg))
	if err != nil {
		return pipeline.Report{Err: err}
	}
	x := feeds.New(pool, wire.Feeds(cfg), feeds.WithLogger(e.Logger), feeds.WithMailer(mailer), feeds.WithOperator(Who()))
	sum, err := x.Run(ctx, run, feeds.Options{Instances: sites})
	if err != nil {
		return pipeline.Report{Err: err, Lines: lines}
	}
	var buf bytes.Buffer
	sum.Write(&buf)
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l = strings.TrimRight(l, " "); l != "" && !strings.HasPrefix(l, "mim export (") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	rep := pipeline.Report{Err: sum.Err(), Lines: lines}
	var fe *feeds.Error
	if errors.As(rep.Err, &fe) && len(fe.Refused) == 0 && len(fe.Failed) < len(sum.Results) {
		rep.Status = ledger.Partial
	}
	return rep
}

func groupsStage(ctx context.Context, e *Env, cfg *config.Config, pool *pgxpool.Pool, run *ledger.Run, site *config.MoodleSite) pipeline.Report {
	counts, err := groupsync.TargetSites(ctx, pool)
	if err != nil {
		return pipeline.Report{Err: err}
	}
	if counts[site.Name] == 0 {
		return pipeline.Report{Lines: []string{"no group-sync course on this site"}}
	}
	c, err := groupsClient(e, site)
	if err != nil {
		return pipeline.Report{Err: err}
	}
	mailer, err := notify.New(wire.Notify(cfg))
	if err != nil {
		return pipeline.Report{Err: err}
	}
	rep, err := groupsync.Sync(ctx, pool, c, envguard.New(cfg.Environment, pool),
		groupsync.Options{Site: wire.GroupSite(site), Run: run, By: Who(), Logger: e.Logger, Mailer: mailer})
	out := pipeline.Report{Err: err}
	var pe *groupsync.PartialError
	if errors.As(err, &pe) {
		out.Status = ledger.Partial
	}
	if rep != nil && rep.Result != nil {
		var buf bytes.Buffer
		if werr := rep.Result.WriteText(&buf); werr == nil {
			for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				out.Lines = append(out.Lines, strings.TrimSpace(l))
			}
		}
	}
	if rep != nil {
		out.Lines = append(out.Lines, rep.BudgetLines()...)
	}
	return out
}
