package feeds

import (
	"fmt"
	"io"
	"strings"

	"github.com/mimwarehouse/mim/internal/progress"
)

// Write prints the summary for an operator: per site and feed its status
// and counts, the guards' decisions, the first drops and the notes.
func (s *Summary) Write(w io.Writer) {
	mode := "delta"
	if s.Full {
		mode = "full"
	}
	switch {
	case s.DryRun:
		fmt.Fprintf(w, "mim export (%s): DRY RUN, nothing was written, recorded or spent\n", mode)
	default:
		fmt.Fprintf(w, "mim export (%s), run %d\n", mode, s.RunID)
	}
	if len(s.Results) == 0 {
		fmt.Fprintln(w, "\n"+noSite)
	}
	for _, r := range s.Results {
		fmt.Fprintln(w)
		for _, l := range s.report(r) {
			fmt.Fprintf(w, "%s%s\n", strings.Repeat("  ", l.depth), l.text)
		}
	}
}

// Lines are what Write prints of each feed, without the header, one line
// each and not indented: the run's summary shows them under its export.
func (s *Summary) Lines() []string {
	if len(s.Results) == 0 {
		return []string{noSite}
	}
	var out []string
	for _, r := range s.Results {
		for _, l := range s.report(r) {
			for _, part := range strings.Split(l.text, "\n") {
				if part = strings.TrimSpace(part); part != "" {
					out = append(out, part)
				}
			}
		}
	}
	return out
}

const noSite = "no Moodle site selected: the configuration's moodle list is empty (or --instance matched none); nothing to export"

// reportLine is one line of a feed's report, indented depth steps.
type reportLine struct {
	depth int
	text  string
}

// report is what the summary says of one feed.
func (s *Summary) report(r *Result) []reportLine {
	out := []reportLine{{0, fmt.Sprintf("%s/%s: %s", r.Instance, r.Feed, strings.ToUpper(r.Status))}}
	add := func(depth int, format string, args ...any) {
		out = append(out, reportLine{depth, fmt.Sprintf(format, args...)})
	}
	if line := r.counts(); line != "" {
		add(1, "%s", line)
	}
	for _, d := range r.Decisions {
		add(1, "guard: %s", d)
	}
	if len(r.SampleDrops) > 0 {
		verb := "first drops sent"
		if s.DryRun {
			verb = "first drops it would send"
		}
		add(1, "%s:", verb)
		for _, d := range r.SampleDrops {
			add(2, "- %s", d)
		}
	}
	if r.File != "" {
		add(1, "file: %s (%s, sha256 %s)", r.File, progress.Counted(r.Bytes, "byte", "bytes"), r.SHA256)
	}
	if r.Archive != "" {
		add(1, "archived: %s", r.Archive)
	}
	if r.Delivered != "" {
		add(1, "delivered: %s", r.Delivered)
	}
	if r.Pending != nil {
		add(1, "NOT APPLIED IN MOODLE: %s", describePending(*r.Pending))
	}
	for _, n := range r.Notes {
		add(1, "note: %s", n)
	}
	if r.Err != nil && r.Status == StatusFailed {
		add(1, "error: %v", r.Err)
	}
	return out
}

func (r *Result) counts() string {
	if r.Status == StatusSkipped {
		return ""
	}
	n := progress.Counted
	switch r.Feed {
	case IMS:
		s := fmt.Sprintf("target %s: %s, %s, %s", n(r.Rows, "row", "rows"), n(r.Adds, "add", "adds"),
			n(r.Changes, "change", "changes"), n(r.Drops, "drop", "drops"))
		if r.Held > 0 {
			s += fmt.Sprintf(", %s held in %s", n(r.Held, "drop", "drops"), n(int64(len(r.HeldCourses)), "course", "courses"))
		}
		if r.Skipped > 0 {
			s += fmt.Sprintf(", %s refused by the writer", n(r.Skipped, "member", "members"))
		}
		return s
	case Profile:
		return fmt.Sprintf("%s, %s with changed values, %s refused", n(r.Rows, "account", "accounts"), progress.Count(r.Changes),
			progress.Count(r.Skipped))
	case Tutor:
		return fmt.Sprintf("%s: %s added, %s removed, %s left out", n(r.Rows, "pair", "pairs"), progress.Count(r.Adds),
			progress.Count(r.Drops), n(r.Skipped, "mart row", "mart rows"))
	case Merge:
		return fmt.Sprintf("%s, %s listed, %s left out", n(r.Rows, "candidate", "candidates"), n(r.Adds, "pair", "pairs"),
			progress.Count(r.Skipped))
	}
	return ""
}
