package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

func init() {
	Register(Command{
		Name:    "status",
		Group:   "Operations",
		Summary: "show the warehouse's environment, schema, overrides and the last runs from the ledger",
		Usage:   "mim status [--runs N]",
		Setup: func(fs *flag.FlagSet) Runner {
			n := fs.Int("runs", 10, "how many recent runs to list")
			return func(ctx context.Context, e *Env, args []string) error {
				if len(args) != 0 {
					return Usagef("status takes no arguments")
				}
				if *n < 1 {
					return Usagef("--runs must be at least 1")
				}
				return printStatus(ctx, e, *n)
			}
		},
	})
	Register(Command{
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
	})
}

func printStatus(ctx context.Context, e *Env, n int) error {
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
	if err := describeDeployment(ctx, e, cfg.Environment); err != nil {
		return err
	}
	overrides, err := settings.Overrides(ctx, pool)
	if err != nil {
		return err
	}
	armed := 0
	for _, o := range overrides {
		if o.Armed {
			armed++
			fmt.Fprintf(e.Stdout, "OVERRIDE: %s\n", o.Describe())
		}
	}
	if armed == 0 {
		fmt.Fprintln(e.Stdout, "overrides: none armed (every guard refuses or holds what breaks its budget)")
	}
	runs, err := ledger.Recent(ctx, pool, n)
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		fmt.Fprintln(e.Stdout, "\nno runs recorded yet")
		return nil
	}
	fmt.Fprintln(e.Stdout, "\nrecent runs:")
	tw := tabwriter.NewWriter(e.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tCOMMAND\tSTATUS\tSTARTED\tDURATION\tSTEPS\tERRORS\tHOST")
	for _, r := range runs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", r.ID, r.Command, r.Status,
			r.Started.Local().Format("2006-01-02 15:04:05"), r.Duration().Round(time.Millisecond), r.Steps, r.StepErrors, r.Host)
	}
	tw.Flush()
	last := runs[0]
	if last.Error != nil {
		fmt.Fprintf(e.Stdout, "\nrun %d ended with: %s\n", last.ID, *last.Error)
	}
	steps, err := ledger.Steps(ctx, pool, last.ID)
	if err != nil {
		return err
	}
	if len(steps) > 0 {
		fmt.Fprintf(e.Stdout, "\nsteps of run %d:\n", last.ID)
		printSteps(e.Stdout, steps)
	}
	return nil
}

func printSteps(w io.Writer, steps []ledger.StepSummary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tSTATUS\tIN\tNEW\tCHANGED\tDELETED\tUNCHANGED\tERRORS\tDURATION")
	for _, s := range steps {
		d := "-"
		if s.Finished != nil {
			d = s.Finished.Sub(s.Started).Round(time.Millisecond).String()
		}
		c := s.Counts
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", s.Key, s.Status, c.In, c.New, c.Changed, c.Deleted, c.Unchanged, c.Errors, d)
	}
	tw.Flush()
	for _, s := range steps {
		if s.Error != nil {
			fmt.Fprintf(w, "  %s: %s\n", s.Key, strings.TrimSpace(*s.Error))
		}
	}
}
