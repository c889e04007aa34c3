package ledger

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mimwarehouse/mim/internal/progress"
)

// The ledger as text, for `mim status`.

// WriteRuns writes a line per run: id, command, status, start, duration,
// steps, step errors and host.
func WriteRuns(w io.Writer, runs []RunSummary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tCOMMAND\tSTATUS\tSTARTED\tDURATION\tSTEPS\tERRORS\tHOST")
	for _, r := range runs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Command, r.Status,
			r.Started.Local().Format("2006-01-02 15:04:05"), r.Duration().Round(time.Millisecond),
			progress.Count(int64(r.Steps)), progress.Count(r.StepErrors), r.Host)
	}
	return tw.Flush()
}

// countColumns are a step's counts, right-aligned.
var countColumns = []progress.Column{{Name: "IN", Right: true}, {Name: "NEW", Right: true}, {Name: "CHANGED", Right: true},
	{Name: "DELETED", Right: true}, {Name: "UNCHANGED", Right: true}, {Name: "ERRORS", Right: true}}

// WriteStages writes a line per stage of steps (ByStage), then the steps
// that did not succeed (WriteSteps).
func WriteStages(w io.Writer, steps []StepSummary) error {
	tw := progress.NewTable(progress.Column{Name: "STAGE"}, progress.Column{Name: "STEPS", Right: true}, countColumns[0], countColumns[1],
		countColumns[2], countColumns[3], countColumns[4], countColumns[5], progress.Column{Name: "TIME", Right: true}, progress.Column{Name: "STATUS"})
	for _, t := range ByStage(steps) {
		d := "running"
		if t.Finished != nil {
			d = t.Finished.Sub(t.Started).Round(time.Millisecond).String()
		}
		c := t.Counts
		tw.Add(t.Stage, progress.Count(int64(t.Steps)), progress.Count(c.In), progress.Count(c.New), progress.Count(c.Changed),
			progress.Count(c.Deleted), progress.Count(c.Unchanged), progress.Count(c.Errors), d, t.Statuses())
	}
	if err := tw.Write(w); err != nil {
		return err
	}
	var bad []StepSummary
	for _, s := range steps {
		if s.Status != Succeeded {
			bad = append(bad, s)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nsteps that did not succeed:")
	return WriteSteps(w, bad)
}

// WriteSteps writes a line per step with its status, counts and own time,
// then the error of each step that recorded one.
func WriteSteps(w io.Writer, steps []StepSummary) error {
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
	if err := tw.Write(w); err != nil {
		return err
	}
	for _, s := range steps {
		if s.Error != nil {
			fmt.Fprintf(w, "  %s: %s\n", s.Key, strings.TrimSpace(*s.Error))
		}
	}
	return nil
}
