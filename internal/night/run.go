package night

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/notify"
	"github.com/mimwarehouse/mim/internal/pipeline"
	"github.com/mimwarehouse/mim/internal/schedule"
	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/internal/wire"
)

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

// ErrHeld is a run that did not start because the schedules are paused.
var ErrHeld = errors.New("held: the schedules are paused")

// Options choose what one run does.
type Options struct {
	// Job names the run in its summary: "mim run", or the schedule's job.
	Job string
	// Cycle is Nightly (the default) or Intraday.
	Cycle string
	// Stages limits the run; empty means every stage of the cycle.
	Stages []string
	// Sources limits the extract; empty means every source of the cycle.
	Sources []string
	// Mail sends the summary to notify.to when mail is configured (the
	// intraday cycle only when a guard refused or the run failed).
	Mail bool
	// Progress is the extract's progress display: log or off.
	Progress string
	// Out receives progress lines and the summary.
	Out io.Writer
	// Pause is what the run does while mim pause holds the schedules:
	// PauseIgnore, PauseNote or PauseObey.
	Pause string
}

// Run runs the cycle's stages under one ledger run, holding the run lock,
// writes the summary to o.Out and mails it, and returns what happened (nil
// if the run could not start). The error is a *pipeline.RunError carrying
// the exit code, ErrHeld, or why the run did not start (another run holds
// the lock: a *warehouse.LockedError).
func Run(ctx context.Context, e *Env, o Options) (*pipeline.Result, error) {
	c, err := o.resolve()
	if err != nil {
		return nil, err
	}
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkSchema(ctx, pool); err != nil {
		return nil, err
	}
	if err := checkPause(ctx, pool, o); err != nil {
		return nil, err
	}
	tasks, err := buildTasks(ctx, e, pool, o, c)
	if err != nil {
		return nil, err
	}
	p, err := pipeline.New(tasks, pipeline.WithLogger(e.logger()), pipeline.WithProgress(o.Out))
	if err != nil {
		return nil, err
	}
	run, err := ledger.Begin(ctx, pool, c.command, e.Config.Environment, e.Version, e.Args)
	if err != nil {
		return nil, fmt.Errorf("starting the run: %w", err)
	}
	defer run.Finish(ctx, ledger.Failed, exitFailure, errors.New("interrupted"))
	fmt.Fprintf(o.Out, "run %d: %s\n", run.ID, taskNames(tasks))
	lapseOverrides(ctx, e, pool, run.ID, o.Out)
	res := p.Run(ctx, run)
	report(context.WithoutCancel(ctx), e, pool, run, res, o, c)
	runErr := res.AsError()
	if err := run.Finish(context.WithoutCancel(ctx), res.Status(), res.ExitCode(), res.Err()); err != nil && runErr == nil {
		return res, err
	}
	return res, runErr
}

// resolve fills o's defaults and checks its stages against its cycle.
func (o *Options) resolve() (cycle, error) {
	if o.Cycle == "" {
		o.Cycle = Nightly
	}
	c, ok := cycles[o.Cycle]
	if !ok {
		return cycle{}, Usagef("--cycle %q is not a cycle (cycles: %s, %s)", o.Cycle, Nightly, Intraday)
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Job == "" {
		o.Job = c.job
	}
	if len(o.Stages) == 0 {
		o.Stages = c.stages
	}
	for _, s := range o.Stages {
		if !slices.Contains(AllStages, s) {
			return cycle{}, Usagef("--stages: %q is not a stage (stages: %s)", s, strings.Join(AllStages, ", "))
		}
		if !slices.Contains(c.stages, s) {
			return cycle{}, Usagef("--stages: the %s cycle has no %s stage (its stages: %s)", o.Cycle, s, strings.Join(c.stages, ", "))
		}
	}
	return c, nil
}

// checkPause applies o.Pause; ErrHeld means the run must not start.
func checkPause(ctx context.Context, pool *pgxpool.Pool, o Options) error {
	if o.Pause == PauseIgnore {
		return nil
	}
	p, err := schedule.CurrentPause(ctx, pool)
	if err != nil || p == nil {
		return err
	}
	if o.Pause == PauseObey {
		fmt.Fprintf(o.Out, "not running: the schedules are %s (mim resume releases them)\n", p)
		return ErrHeld
	}
	fmt.Fprintf(o.Out, "note: the schedules are %s; this run was started by hand and goes ahead\n", p)
	return nil
}

// lapseOverrides lapses the overrides armed longer ago than override_hours,
// and says so, before any guard looks at them.
func lapseOverrides(ctx context.Context, e *Env, pool *pgxpool.Pool, runID int64, out io.Writer) {
	lapsed, err := settings.LapseExpired(ctx, pool, e.Operator)
	if err != nil {
		e.logger().Warn("lapsing expired overrides", "run_id", runID, "error", err)
		return
	}
	if len(lapsed) > 0 {
		fmt.Fprintf(out, "lapsed unused (armed more than override_hours ago): %s\n", strings.Join(lapsed, ", "))
	}
}

// report records the run's Moodle calls (/metrics reads them from the
// ledger), writes the summary and mails it as the cycle says.
func report(ctx context.Context, e *Env, pool *pgxpool.Pool, run *ledger.Run, res *pipeline.Result, o Options, c cycle) {
	e.saveRequests(ctx, pool, run.ID)
	var summary bytes.Buffer
	host, _ := os.Hostname()
	info := pipeline.RunInfo{Job: o.Job, Host: host, Environment: e.Config.Environment, Version: e.Version}
	if err := pipeline.WriteSummary(ctx, pool, &summary, res, info); err != nil {
		fmt.Fprintf(&summary, "(the summary could not be read from the ledger: %v)\n", err)
	}
	fmt.Fprintf(o.Out, "\n%s", summary.String())
	if o.Mail && (c.mailAlways || res.ExitCode() != 0) {
		mailSummary(ctx, e, run, pipeline.Subject(res, info), summary.String(), o.Out)
	}
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
func mailSummary(ctx context.Context, e *Env, run *ledger.Run, subject, body string, out io.Writer) {
	cfg := e.Config
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
		e.logger().Warn("sending the run summary", "run_id", run.ID, "error", err)
		return
	}
	fmt.Fprintf(out, "summary mailed to %s\n", strings.Join(cfg.Notify.To, ", "))
}
