package night

import (
	"context"
	"errors"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/internal/cli"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/notify"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/transform"
)

// TransformRun is `mim transform` under its own ledger run: p's selected
// models built and checked in one transaction. begin, once the run is
// recorded, learns its id and how many models are selected; show sees the
// result before the run is finished (the command prints them).
func TransformRun(ctx context.Context, e *Env, p *transform.Project, opts transform.Options,
	begin func(runID int64, selected int), show func(*transform.Result, error)) error {
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return err
	}
	run, err := ledger.Begin(ctx, pool, "transform", e.Config.Environment, e.Version, e.Args)
	if err != nil {
		return err
	}
	defer run.Finish(ctx, ledger.Failed, exitFailure, errors.New("interrupted"))
	opts.Run = run
	opts.StatementTimeout, opts.LockTimeout = e.Config.Warehouse.StatementTimeout, e.Config.Warehouse.LockTimeout
	opts.Logger = e.Logger
	opts.Hooks = TransformHooks(e.Config, e.Operator, run.ID)
	selected, err := p.Select(opts.Select)
	if err != nil {
		_ = run.Finish(ctx, ledger.Failed, exitUsage, err)
		return err
	}
	begin(run.ID, len(selected))
	res, err := transform.Run(ctx, pool, p, opts)
	show(res, err)
	if ferr := run.Finish(ctx, ledger.Outcome(err), cli.ExitCode(err), err); ferr != nil && err == nil {
		return ferr
	}
	return err
}

// Export is `mim export`: every feed of the sites opts names, under its own
// ledger run unless it is a dry run. show sees the summary before the run
// is finished (the command prints it). The error is the summary's Err (a
// *feeds.Error), or why the export could not run.
func Export(ctx context.Context, e *Env, opts feeds.Options, show func(*feeds.Summary)) (err error) {
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return err
	}
	mailer, err := notify.New(wire.Notify(e.Config))
	if err != nil {
		return err
	}
	x := feeds.New(pool, wire.Feeds(e.Config), feeds.WithMailer(mailer), feeds.WithLogger(e.Logger), feeds.WithOperator(e.Operator))
	var run *ledger.Run
	var sum *feeds.Summary
	if !opts.DryRun {
		run, err = ledger.Begin(ctx, pool, "export", e.Config.Environment, e.Version, e.Args)
		if err != nil {
			return err
		}
		defer func() { _ = run.Finish(ctx, ExportOutcome(sum, err), cli.ExitCode(err), err) }()
	}
	sum, err = x.Run(ctx, run, opts)
	if sum != nil {
		show(sum)
	}
	if err != nil {
		var ue *feeds.UnknownSiteError
		if errors.As(err, &ue) {
			return Usagef("--instance: %v", ue)
		}
		return err
	}
	return sum.Err()
}

// ExportOutcome is the run's ledger status: partial when some feeds failed
// while others went out.
func ExportOutcome(sum *feeds.Summary, err error) string {
	var fe *feeds.Error
	if sum != nil && errors.As(err, &fe) && len(fe.Refused) == 0 {
		for _, r := range sum.Results {
			if r.Status == feeds.StatusPublished || r.Status == feeds.StatusEmpty {
				return ledger.Partial
			}
		}
	}
	return ledger.Outcome(err)
}
