package app

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/schedule"
	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

var statusCommand = Command{
	Name:    "status",
	Group:   "Operations",
	Summary: "show the warehouse's environment, schema, overrides and the last runs from the ledger",
	Usage:   "mim status [--runs N] [--steps]",
	Help:    helpText("status"),
	Setup: func(fs *flag.FlagSet) Runner {
		n := fs.Int("runs", 10, "how many recent runs to list")
		steps := fs.Bool("steps", false, "list every step of the last run, not a line per stage")
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) != 0 {
				return Usagef("status takes no arguments")
			}
			if *n < 1 {
				return Usagef("--runs must be at least 1")
			}
			return printStatus(ctx, e, *n, *steps)
		}
	},
}

var versionCommand = Command{
	Name:     "version",
	Group:    "Other",
	Summary:  "print mim's version",
	Usage:    "mim version",
	NoConfig: true,
	Setup: func(fs *flag.FlagSet) Runner {
		return func(ctx context.Context, e *Env, args []string) error {
			fmt.Fprintf(e.Stdout, "mim %s\n", VersionString())
			return nil
		}
	},
}

// printStatus prints the warehouse's environment and schema, the armed
// overrides, the pause, and the last n runs with the last one's steps.
func printStatus(ctx context.Context, e *Env, n int, allSteps bool) error {
	cfg, err := e.Config()
	if err != nil {
		return err
	}
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "mim %s, deployment environment %q\n", VersionString(), cfg.Environment)
	pending, err := warehouse.Pending(ctx, pool)
	if err != nil {
		return err
	}
	if pending > 0 {
		fmt.Fprintf(e.Stdout, "schema: %d migration(s) pending; run `mim migrate`\n", pending)
		return nil
	}
	fmt.Fprintln(e.Stdout, "schema: up to date")
	if err := warehouse.DescribeDeployment(ctx, pool, e.Stdout, cfg.Environment); err != nil {
		return err
	}
	if err := printHolds(ctx, e.Stdout, pool); err != nil {
		return err
	}
	return printRuns(ctx, e.Stdout, pool, n, allSteps)
}

// printHolds prints the armed overrides and whether the schedules are paused.
func printHolds(ctx context.Context, w io.Writer, pool *pgxpool.Pool) error {
	overrides, err := settings.Overrides(ctx, pool)
	if err != nil {
		return err
	}
	armed := 0
	for _, o := range overrides {
		if o.Armed {
			armed++
			fmt.Fprintf(w, "OVERRIDE: %s\n", o.Describe())
		}
	}
	if armed == 0 {
		fmt.Fprintln(w, "overrides: none armed (every guard refuses or holds what breaks its budget)")
	}
	switch p, err := schedule.CurrentPause(ctx, pool); {
	case err != nil:
		return err
	case p != nil:
		fmt.Fprintf(w, "PAUSED: the schedules are %s; mim serve runs no scheduled job until `mim resume`\n", p)
	default:
		fmt.Fprintln(w, "schedules: not paused")
	}
	return nil
}

// printRuns prints the last n runs, then the last one's steps: a line per
// stage, or every step.
func printRuns(ctx context.Context, w io.Writer, pool *pgxpool.Pool, n int, allSteps bool) error {
	runs, err := ledger.Recent(ctx, pool, n)
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		fmt.Fprintln(w, "\nno runs recorded yet")
		return nil
	}
	fmt.Fprintln(w, "\nrecent runs:")
	if err := ledger.WriteRuns(w, runs); err != nil {
		return err
	}
	last := runs[0]
	if last.Error != nil {
		fmt.Fprintf(w, "\nrun %d ended with: %s\n", last.ID, *last.Error)
	}
	steps, err := ledger.Steps(ctx, pool, last.ID)
	switch {
	case err != nil || len(steps) == 0:
		return err
	case allSteps:
		fmt.Fprintf(w, "\nsteps of run %d:\n", last.ID)
		return ledger.WriteSteps(w, steps)
	}
	fmt.Fprintf(w, "\nrun %d by stage (mim status --steps lists every step):\n", last.ID)
	return ledger.WriteStages(w, steps)
}
