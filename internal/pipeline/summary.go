package pipeline

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/progress"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// RunInfo names a run for its summary.
type RunInfo struct {
	Job         string // "mim run", or the schedule's job name: "nightly"
	Host        string
	Environment string
	Version     string
	// Location is the zone times are written in (default time.Local).
	Location *time.Location
}

// GuardEvent is one row of ctl.guard_event.
type GuardEvent struct {
	RunID                              *int64
	Instance, Guard, Decision, Subject string
	Previous, Current                  *int64
	Percent, Limit                     *float64
	// Detail is the guard's own record of what it measured.
	Detail map[string]any
	At     time.Time
}

// String writes the decision the way the mail and the terminal show it.
func (g GuardEvent) String() string {
	var b strings.Builder
	b.WriteString(g.Guard)
	for _, s := range []string{g.Instance, g.Subject} {
		if s != "" {
			b.WriteString(" " + s)
		}
	}
	b.WriteString(": " + g.Decision)
	if f := g.Figures(); f != "" {
		b.WriteString(" (" + f + ")")
	}
	return b.String()
}

// Figures writes what the guard measured, each number in its own unit. A
// threshold compares a count with the last one ("1,000 → 990, 99.0%,
// limit 75%"); the group delete budget limits deletions by a count of
// groups and groupings and by a share of the groups MIM owns, which are
// not a before and an after.
func (g GuardEvent) Figures() string {
	if _, ok := g.Detail["budget_percent"]; ok {
		n := func(k string) int64 { v, _ := g.Detail[k].(float64); return int64(v) }
		groups, groupings := n("group_deletes"), n("grouping_deletes")
		s := fmt.Sprintf("deletes %s and %s, %s in all, limit %s; %s of the %s MIM owns",
			progress.Counted(groups, "group", "groups"), progress.Counted(groupings, "grouping", "groupings"),
			progress.Count(groups+groupings), progress.Counted(n("budget"), "deletion", "deletions"),
			progress.Count(groups), progress.Counted(n("owned_groups"), "group", "groups"))
		if g.Percent != nil {
			s += fmt.Sprintf(", %.1f%%", *g.Percent)
		}
		return s + fmt.Sprintf(", limit %d%%", n("budget_percent"))
	}
	if g.Previous == nil || g.Current == nil {
		return ""
	}
	s := progress.Count(*g.Previous) + " → " + progress.Count(*g.Current)
	if g.Percent != nil {
		s += fmt.Sprintf(", %.1f%%", *g.Percent)
	}
	if g.Limit != nil {
		s += fmt.Sprintf(", limit %.0f%%", *g.Limit)
	}
	return s
}

// GuardEvents reads the guard decisions recorded under a run.
func GuardEvents(ctx context.Context, q warehouse.Querier, runID int64) ([]GuardEvent, error) {
	return ReadGuardEvents(ctx, q, "run_id = $1", 0, runID)
}

// ReadGuardEvents reads the guard decisions matching where (an SQL
// condition on ctl.guard_event, with args), newest first when limit > 0
// (that many), else all in the order they were made.
func ReadGuardEvents(ctx context.Context, q warehouse.Querier, where string, limit int, args ...any) ([]GuardEvent, error) {
	order := "event_id"
	if limit > 0 {
		order = fmt.Sprintf("event_id DESC LIMIT %d", limit)
	}
	rows, err := q.Query(ctx, `SELECT run_id, instance, guard, decision, subject, previous, current, percent::float8, limit_value::float8,
		detail, created_at FROM ctl.guard_event WHERE `+where+` ORDER BY `+order, args...)
	if err != nil {
		return nil, fmt.Errorf("reading the guard events: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (GuardEvent, error) {
		var g GuardEvent
		err := r.Scan(&g.RunID, &g.Instance, &g.Guard, &g.Decision, &g.Subject, &g.Previous, &g.Current, &g.Percent, &g.Limit, &g.Detail, &g.At)
		return g, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the guard events: %w", err)
	}
	return out, nil
}

// Subject is the summary mail's subject line.
func Subject(res *Result, info RunInfo) string {
	status := res.Status()
	mark := ""
	switch status {
	case ledger.Refused:
		mark = "[REFUSED] "
	case ledger.Failed, ledger.Partial:
		mark = "[" + strings.ToUpper(status) + "] "
	}
	return fmt.Sprintf("%sMIM %s on %s: run %d %s", mark, info.Job, info.Environment, res.RunID, status)
}

// bigTask is the number of steps above which a task's steps are summed up
// instead of listed (a transform records one step per model).
const bigTask = 12

// WriteSummary writes the run's report, shaped like the incumbent's job
// mail: a header, one section per task with its times, status and the
// counts its ledger steps recorded, the guard decisions, and the end.
func WriteSummary(ctx context.Context, q warehouse.Querier, w io.Writer, res *Result, info RunInfo) error {
	loc := info.Location
	if loc == nil {
		loc = time.Local
	}
	steps, err := ledger.Steps(ctx, q, res.RunID)
	if err != nil {
		return err
	}
	guards, err := GuardEvents(ctx, q, res.RunID)
	if err != nil {
		return err
	}
	clock := func(t time.Time) string { return t.In(loc).Format("15:04:05.000") }
	var b strings.Builder
	// The outcome first: a mail list shows the first line.
	fmt.Fprintf(&b, "MIM %s has completed: run %d %s (host %s).\n\n", info.Job, res.RunID, res.Status(), info.Host)
	fmt.Fprintf(&b, "---------- Execute %s (run %d) ----------\n\n", info.Job, res.RunID)
	fmt.Fprintf(&b, "Run commenced at %s\n\n", res.Started.In(loc).Format("15:04:05 02-01-2006 MST"))
	fmt.Fprintf(&b, "Start: %s\n", clock(res.Started))
	fmt.Fprintf(&b, "Environment: %s; mim %s\n", info.Environment, info.Version)

	claimed := make([]bool, len(steps))
	for _, o := range res.Outcomes {
		b.WriteString("\n----------------------\n")
		if o.Status == ledger.Skipped {
			fmt.Fprintf(&b, "%s: skipped\n", o.Task)
		} else {
			fmt.Fprintf(&b, "%s: %s - %s (%s) %s\n", o.Task, clock(o.Started), clock(o.Finished),
				o.Elapsed().Round(time.Millisecond), o.Status)
		}
		var mine []ledger.StepSummary
		for i, s := range steps {
			if !claimed[i] && matches(o, s.Key) {
				claimed[i] = true
				if s.Status != ledger.Skipped {
					mine = append(mine, s)
				}
			}
		}
		writeSteps(&b, mine, o.Instance == "")
		for _, l := range o.Lines {
			fmt.Fprintf(&b, "  %s\n", l)
		}
		if o.Err != nil {
			fmt.Fprintf(&b, "  error: %s\n", strings.ReplaceAll(o.Err.Error(), "\n", "\n    "))
		}
	}
	var other []ledger.StepSummary
	for i, s := range steps {
		if !claimed[i] {
			other = append(other, s)
		}
	}
	if len(other) > 0 {
		b.WriteString("\n----------------------\nother steps:\n")
		writeSteps(&b, other, true)
	}

	b.WriteString("\n----------------------\nGuard decisions:\n")
	if len(guards) == 0 {
		b.WriteString("  none recorded in this run\n")
	}
	var held []string
	for _, g := range guards {
		fmt.Fprintf(&b, "  %s\n", g)
		if g.Guard == "course_drop" && g.Decision == "held" {
			held = append(held, g.Instance+" "+g.Subject)
		}
	}
	if len(held) > 0 {
		fmt.Fprintf(&b, "Held courses (drops not sent; check their mappings): %s\n", strings.Join(held, ", "))
	}
	fmt.Fprintf(&b, "\nEnd: %s\n\n", clock(res.Finished))
	fmt.Fprintf(&b, "---------- Finished %s (run %d): %s in %s ----------\n", info.Job, res.RunID, res.Status(),
		res.Finished.Sub(res.Started).Round(time.Millisecond))
	_, err = io.WriteString(w, b.String())
	return err
}

func matches(o Outcome, k ledger.StepKey) bool {
	return k.Stage == o.Stage && (o.Source == "" || k.Source == o.Source) && (o.Instance == "" || k.Instance == o.Instance)
}

// writeSteps lists steps with their counts, or sums them up when there are
// many, listing only those that did not succeed. withInstance names each
// step's site too (for a task over every site, such as the export).
func writeSteps(b *strings.Builder, steps []ledger.StepSummary, withInstance bool) {
	var listed []ledger.StepSummary
	for _, s := range steps {
		// A source's own step carries no counts; its entities do.
		if s.Key.Entity == "" && s.Counts == (ledger.Counts{}) && s.Status == ledger.Succeeded {
			continue
		}
		listed = append(listed, s)
	}
	if len(listed) == 0 {
		return
	}
	if len(listed) > bigTask {
		var rows, errs int64
		byStatus := map[string]int{}
		var bad []ledger.StepSummary
		for _, s := range listed {
			rows += s.Counts.In
			errs += s.Counts.Errors
			byStatus[s.Status]++
			if s.Status != ledger.Succeeded {
				bad = append(bad, s)
			}
		}
		var parts []string
		for _, st := range []string{ledger.Succeeded, ledger.Partial, ledger.Failed, ledger.Refused, ledger.Running} {
			if byStatus[st] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", byStatus[st], st))
			}
		}
		fmt.Fprintf(b, "  %s (%s), %s, %s\n", progress.Counted(int64(len(listed)), "step", "steps"), strings.Join(parts, ", "),
			progress.Counted(rows, "row", "rows"), progress.Counted(errs, "error", "errors"))
		listed = bad
		if len(listed) == 0 {
			return
		}
	}
	t := progress.NewTable(progress.Column{Name: "STEP"}, progress.Column{Name: "IN", Right: true},
		progress.Column{Name: "NEW", Right: true}, progress.Column{Name: "CHANGED", Right: true},
		progress.Column{Name: "DELETED", Right: true}, progress.Column{Name: "UNCHANGED", Right: true},
		progress.Column{Name: "ERRORS", Right: true}, progress.Column{Name: "SECONDS", Right: true}, progress.Column{Name: "STATUS"})
	for _, s := range listed {
		name := s.Key.Entity
		switch {
		case name == "":
			name = s.Key.String()
		case withInstance && s.Key.Instance != "":
			name = s.Key.Instance + "/" + name
		}
		secs := "-"
		if s.Finished != nil {
			secs = fmt.Sprintf("%.1f", s.Duration().Seconds())
		}
		c := s.Counts
		t.Add(name, progress.Count(c.In), progress.Count(c.New), progress.Count(c.Changed), progress.Count(c.Deleted),
			progress.Count(c.Unchanged), progress.Count(c.Errors), secs, s.Status)
	}
	var tb strings.Builder
	_ = t.Write(&tb)
	for _, line := range strings.Split(strings.TrimRight(tb.String(), "\n"), "\n") {
		b.WriteString("  " + line + "\n")
	}
	for _, s := range listed {
		if s.Error != nil {
			fmt.Fprintf(b, "  %s: %s\n", s.Key, strings.TrimSpace(*s.Error))
		}
	}
}
