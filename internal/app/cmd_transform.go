package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mimwarehouse/mim/internal/night"
	"github.com/mimwarehouse/mim/internal/progress"
	"github.com/mimwarehouse/mim/transform"
)

var transformCommand = Command{
	Name:    "transform",
	Group:   "Pipeline",
	Summary: "build staging and marts from raw in one checked transaction",
	Usage:   "mim transform [--select MODEL[+]]... [--rollback] [--list] [--samples N] [--models DIR]",
	Help:    helpText("transform"),
	Setup: func(fs *flag.FlagSet) Runner {
		var sel []string
		fs.Func("select", "build only these `MODEL`s (name or glob; MODEL+ adds descendants, +MODEL ancestors); repeatable", func(s string) error {
			for _, p := range strings.Split(s, ",") {
				if p = strings.TrimSpace(p); p != "" {
					sel = append(sel, p)
				}
			}
			return nil
		})
		rollback := fs.Bool("rollback", false, "build and check everything, then roll back: a rehearsal that changes nothing")
		list := fs.Bool("list", false, "list the models in run order with their dependencies and checks, and exit")
		samples := fs.Int("samples", transform.DefaultSampleRows, "show up to `N` failing rows per check")
		dir := fs.String("models", "", "read models from `DIR` (holding staging/, intermediate/, marts/, tests/) instead of the built-in ones")
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) != 0 {
				return Usagef("transform takes no arguments (did you mean --select %s?)", args[0])
			}
			if *samples < 1 || *samples > 1000 {
				return Usagef("--samples must be between 1 and 1000")
			}
			p, err := transformProject(*dir)
			if err != nil {
				return err
			}
			if *list {
				return transformList(e.Stdout, p, sel)
			}
			return runTransform(ctx, e, p, transform.Options{Select: sel, Rollback: *rollback, SampleRows: *samples})
		}
	},
}

func transformProject(dir string) (*transform.Project, error) {
	if dir == "" {
		return transform.LoadEmbedded()
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, Usagef("--models %s is not a directory", dir)
	}
	return transform.Load(os.DirFS(dir))
}

func transformList(w io.Writer, p *transform.Project, sel []string) error {
	models, err := p.Select(sel)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tMODEL\tAS\tDEPENDS ON\tCHECKS")
	for i, m := range models {
		var checks []string
		for _, c := range m.Checks {
			checks = append(checks, c.Text)
		}
		deps := strings.Join(m.Depends, ", ")
		if deps == "" {
			deps = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i+1, m.Name, m.Materialized, deps, strings.Join(checks, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(p.Tests()) > 0 {
		fmt.Fprintf(w, "\n%d singular tests:\n", len(p.Tests()))
		for _, t := range p.Tests() {
			fmt.Fprintf(w, "  %s (sql/%s)\n", t.Name, t.Path)
		}
	}
	return nil
}

func runTransform(ctx context.Context, e *Env, p *transform.Project, opts transform.Options) error {
	ne, err := nightEnv(e)
	if err != nil {
		return err
	}
	opts.OnModel = func(m transform.ModelResult) {
		rows := "-"
		if m.Rows >= 0 {
			rows = progress.Count(m.Rows) + " rows"
		}
		fmt.Fprintf(e.Stdout, "  %-36s %-5s %-9s %14s %8s\n", m.Model, m.Materialized, m.Action, rows, m.Duration.Round(time.Millisecond))
	}
	begin := func(runID int64, selected int) {
		fmt.Fprintf(e.Stdout, "transform (run %d): %d of %d models, one transaction\n", runID, selected, len(p.Models()))
	}
	return night.TransformRun(ctx, ne, p, opts, begin, func(res *transform.Result, err error) { printTransform(e.Stdout, res, err) })
}

// printTransform says what the transform did after its models.
func printTransform(w io.Writer, res *transform.Result, err error) {
	if res != nil {
		for _, h := range res.Hooks {
			fmt.Fprintf(w, "  hook %s: %s (%s)\n", h.Name, h.Summary, h.Duration.Round(time.Millisecond))
		}
		if len(res.Skipped) > 0 {
			fmt.Fprintf(w, "skipped %d checks/tests of models never built: %s\n", len(res.Skipped), strings.Join(res.Skipped, "; "))
		}
		if len(res.Stale) > 0 {
			fmt.Fprintf(w, "not selected, keeping their previous rows (select MODEL+ to rebuild them): %s\n", strings.Join(res.Stale, ", "))
		}
	}
	switch {
	case err != nil:
	case res.Committed:
		fmt.Fprintf(w, "committed: %d models built, %d checks and tests passed, %s\n", len(res.Models), res.Checked, res.Duration.Round(time.Millisecond))
	default:
		fmt.Fprintf(w, "rehearsal: %d models built, %d checks and tests passed, everything rolled back (%s)\n",
			len(res.Models), res.Checked, res.Duration.Round(time.Millisecond))
	}
}
