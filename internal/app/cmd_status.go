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
	"github.com/mimwarehouse/mim/internal/progress"
	"github.com/mimwarehouse/mim/internal/schedule"
	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

var statusCommand = Command{
	Name:    "status",
	Group:   "Operations",
	Summary: "show the warehouse's environment, schema, overrides and the last runs from the ledger",
	Usage:   "mim status [--runs N] [--steps]",
	Help: `Shows what the warehouse says: its environment label and schema, the
one-shot overrides, whether mim pause holds the schedules, the last runs,
and the last run by stage (steps, their statuses, the rows they counted and
the stage's time), with every step that did not succeed. --steps lists
every step of the last run instead, each with its own time (a transform
model's build time, not the time to the commit that ends them all).`,
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
	switch p, err := schedule.CurrentPause(ctx, pool); {
	case err != nil:
		return err
	case p != nil:
		fmt.Fprintf(e.Stdout, "PAUSED: the schedules are %s; mim serve runs no scheduled job until `mim resume`\n", p)
	default:
		fmt.Fprintln(e.Stdout, "schedules: not paused")
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
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Command, r.Status,
			r.Started.Local().Format("2006-01-02 15:04:05"), r.Duration().Round(time.Millisecond),
			progress.Count(int64(r.Steps)), progress.Count(r.StepErrors), r.Host)
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
	switch {
	case len(steps) == 0:
	case allSteps:
		fmt.Fprintf(e.Stdout, "\nsteps of run %d:\n", last.ID)
		printSteps(e.Stdout, steps)
	default:
		fmt.Fprintf(e.Stdout, "\nrun %d by stage (mim status --steps lists every step):\n", last.ID)
		printStages(e.Stdout, steps)
	}
	return nil
}

// countColumns are a step's counts, right-aligned.
var countColumns = []progress.Column{{Name: "IN", Right: true}, {Name: "NEW", Right: true}, {Name: "CHANGED", Right: true},
	{Name: "DELETED", Right: true}, {Name: "UNCHANGED", Right: true}, {Name: "ERRORS", Right: true}}

// printStages writes a line per stage, then the steps that did not succeed.
func printStages(w io.Writer, steps []ledger.StepSummary) {
	tw := progress.NewTable(progress.Column{Name: "STAGE"}, progress.Column{Name: "STEPS", Right: true}, countColumns[0], countColumns[1],
		countColumns[2], countColumns[3], countColumns[4], countColumns[5], progress.Column{Name: "TIME", Right: true}, progress.Column{Name: "STATUS"})
	for _, t := range ledger.ByStage(steps) {
		d := "running"
		if t.Finished != nil {
			d = t.Finished.Sub(t.Started).Round(time.Millisecond).String()
		}
		c := t.Counts
		tw.Add(t.Stage, progress.Count(int64(t.Steps)), progress.Count(c.In), progress.Count(c.New), progress.Count(c.Changed),
			progress.Count(c.Deleted), progress.Count(c.Unchanged), progress.Count(c.Errors), d, t.Statuses())
	}
	_ = tw.Write(w)
	var bad []ledger.StepSummary
	for _, s := range steps {
		if s.Status != ledger.Succeeded {
			bad = append(bad, s)
		}
	}
	if len(bad) > 0 {
		fmt.Fprintln(w, "\nsteps that did not succeed:")
		printSteps(w, bad)
	}
}

func printSteps(w io.Writer, steps []ledger.StepSummary) {
	tw := progress.NewTable(progress.Column{Name: "STEP"}, progress.Column{Name: "STATUS"}, countColumns[0], countColumns[1],
		countColumns[2], countColumns[3], countColumns[4], countColumns[5], progress.Column{Name: "TIME", Right: true})
	for _, s := range steps {
		d := "running"
		if s.Finished != nil {
			d = s.Duration().Round(time.Millisecond).String()
		}
		c := s.Counts
		tw.Add(s.Key.String(), s.Status, progress.Count(c.In), progress.Count(c.New), progress.Count(c.Changed),
			progress.Count(c.Deleted), progress.Count(c.Unchanged), progress.Count(c.Errors), d)
	}
	_ = tw.Write(w)
	for _, s := range steps {
		if s.Error != nil {
			fmt.Fprintf(w, "  %s: %s\n", s.Key, strings.TrimSpace(*s.Error))
		}
	}
}
