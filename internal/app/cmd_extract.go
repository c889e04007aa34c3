package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/night"
	"github.com/mimwarehouse/mim/internal/progress"
)

var extractCommand = Command{
	Name:    "extract",
	Group:   "Pipeline",
	Summary: "read SITS, CMIS and the Moodle sites into the warehouse's raw layer",
	Usage:   "mim extract [--source NAME]... [--entity [SOURCE/]ENTITY]... [--progress auto|bars|log|off]",
	Help:    helpText("extract"),
	Setup: func(fs *flag.FlagSet) Runner {
		var sources, entities []string
		fs.Func("source", "extract only source `NAME` (sits, cmis, moodle:SITE, or moodle for every site); repeatable", listFlag(&sources))
		fs.Func("entity", "extract only `ENTITY` (or SOURCE/ENTITY, e.g. moodle:main/users); repeatable", listFlag(&entities))
		mode := fs.String("progress", "auto", "progress display: auto (bars on a terminal, else log lines), bars, log or off")
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) != 0 {
				return Usagef("extract takes no arguments (did you mean --source %s?)", args[0])
			}
			return runExtract(ctx, e, night.ExtractOptions{Sources: sources, Entities: entities, Progress: *mode})
		}
	},
}

func listFlag(dst *[]string) func(string) error {
	return func(s string) error {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				*dst = append(*dst, p)
			}
		}
		return nil
	}
}

func runExtract(ctx context.Context, e *Env, opts night.ExtractOptions) error {
	ne, err := nightEnv(e)
	if err != nil {
		return err
	}
	res, err := night.Extract(ctx, ne, opts, func(runID int64, out *night.ExtractOutcome) error {
		fmt.Fprintf(e.Stdout, "extract run %d:\n", runID)
		return writeExtractSummary(e.Stdout, out)
	})
	if err == nil {
		fmt.Fprintf(e.Stdout, "run %d %s in %s\n", res.RunID, res.Status, time.Since(res.Started).Round(time.Millisecond))
	}
	return usage(err)
}

// writeExtractSummary prints one row per entity (and per source that failed
// before any entity), then what failed and which scopes were kept as they were.
func writeExtractSummary(w io.Writer, o *night.ExtractOutcome) error {
	num := func(n int64) string { return progress.Count(n) }
	t := progress.NewTable(progress.Column{Name: "SOURCE"}, progress.Column{Name: "INSTANCE"}, progress.Column{Name: "ENTITY"},
		progress.Column{Name: "IN", Right: true}, progress.Column{Name: "NEW", Right: true}, progress.Column{Name: "CHANGED", Right: true},
		progress.Column{Name: "DELETED", Right: true}, progress.Column{Name: "UNCHANGED", Right: true},
		progress.Column{Name: "ERRORS", Right: true}, progress.Column{Name: "SECONDS", Right: true}, progress.Column{Name: "STATUS"})
	var notes []string
	for _, s := range o.Sources {
		kind, inst := night.SourceKind(s.Name)
		if len(s.Entities) == 0 {
			status := ledger.Succeeded
			if s.Err != nil {
				status = ledger.Failed
			}
			t.Add(kind, inst, "-", "", "", "", "", "", "", fmt.Sprintf("%.1f", s.Elapsed.Seconds()), status)
		}
		for _, r := range s.Entities {
			res := r.Result
			if r.Status == ledger.Failed || r.Status == ledger.Refused {
				t.Add(r.ID.Source, r.ID.Instance, r.ID.Entity, num(res.In), "", "", "", "", num(r.Errors),
					fmt.Sprintf("%.1f", r.Elapsed.Seconds()), r.Status)
				notes = append(notes, fmt.Sprintf("%s: %s", r.ID, entityErr(r.Err)))
				continue
			}
			t.Add(r.ID.Source, r.ID.Instance, r.ID.Entity, num(res.In), num(res.New), num(res.Changed), num(res.Deleted),
				num(res.Unchanged), num(r.Errors), fmt.Sprintf("%.1f", r.Elapsed.Seconds()), r.Status)
			if n := len(res.FailedScopes); n > 0 {
				shown := res.FailedScopes[:min(n, 10)]
				more := ""
				if n > len(shown) {
					more = fmt.Sprintf(" and %d more", n-len(shown))
				}
				notes = append(notes, fmt.Sprintf("%s: %d scope(s) not read completely, kept as they were: %s%s",
					r.ID, n, strings.Join(shown, ", "), more))
			}
		}
		if s.Err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", s.Name, s.Err))
		}
	}
	if err := t.Write(w); err != nil {
		return err
	}
	for _, n := range notes {
		if _, err := fmt.Fprintln(w, "  "+n); err != nil {
			return err
		}
	}
	return nil
}

func entityErr(err error) string {
	if err == nil {
		return "failed"
	}
	return err.Error()
}
