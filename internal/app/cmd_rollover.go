package app

import (
	"context"
	"flag"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/export/feeds"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/mapping"
	"github.com/mimwarehouse/mim/internal/night"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/transform"
)

var rolloverCommand = Command{
	Name:    "rollover",
	Group:   "Warehouse",
	Summary: "walk the academic-year rollover checklist; a dry run unless --apply",
	Usage:   "mim rollover --year YYYY [--apply] [--reason TEXT] [--no-transform]",
	Help:    helpText("rollover"),
	Setup: func(fs *flag.FlagSet) Runner {
		year := fs.Int("year", 0, "the new academic start `YYYY` (e.g. 2026 for 2026/27)")
		apply := fs.Bool("apply", false, "make the changes (default: a dry run that changes nothing)")
		reason := fs.String("reason", "", "why, kept in the mapping and settings history (e.g. who agreed the override)")
		noTransform := fs.Bool("no-transform", false, "dry run: do not rebuild the marts inside the rehearsal")
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) != 0 {
				return Usagef("rollover takes no arguments")
			}
			if *year == 0 {
				return Usagef("--year YYYY is required")
			}
			return rollover(ctx, e, *year, *apply, *reason, *noTransform)
		}
	},
}

func rollover(ctx context.Context, e *Env, year int, apply bool, reason string, noTransform bool) (err error) {
	cfg, pool, run, err := beginRun(ctx, e, "rollover")
	if err != nil {
		return err
	}
	defer func() { _ = run.Finish(ctx, ledger.Outcome(err), ExitCode(err), err) }()
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	r := mapping.Rollover{Year: year, Apply: apply, Reason: reason, By: Who(), RunID: run.ID, Export: feeds.NewPreviewer(wire.Feeds(cfg))}
	if !noTransform {
		r.Rebuild = func(ctx context.Context, tx pgx.Tx, w io.Writer) error {
			return transform.Rehearse(ctx, tx, transform.Options{StatementTimeout: cfg.Warehouse.StatementTimeout,
				LockTimeout: cfg.Warehouse.LockTimeout, Hooks: night.TransformHooks(cfg, Who(), run.ID)}, w)
		}
	}
	return r.Run(ctx, tx, e.Stdout)
}
