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
		fmt.Fprintln(w, "\nno Moodle site selected: the configuration's moodle list is empty (or --instance matched none); nothing to export")
	}
	for _, r := range s.Results {
		fmt.Fprintf(w, "\n%s/%s: %s\n", r.Instance, r.Feed, strings.ToUpper(r.Status))
		if line := r.counts(); line != "" {
			fmt.Fprintf(w, "  %s\n", line)
		}
		for _, d := range r.Decisions {
			fmt.Fprintf(w, "  guard: %s\n", d)
		}
		if len(r.SampleDrops) > 0 {
			verb := "first drops sent"
			if s.DryRun {
				verb = "first drops it would send"
			}
			fmt.Fprintf(w, "  %s:\n", verb)
			for _, d := range r.SampleDrops {
				fmt.Fprintf(w, "    - %s\n", d)
			}
		}
		if r.File != "" {
			fmt.Fprintf(w, "  file: %s (%s, sha256 %s)\n", r.File, progress.Counted(r.Bytes, "byte", "bytes"), r.SHA256)
		}
		if r.Archive != "" {
			fmt.Fprintf(w, "  archived: %s\n", r.Archive)
		}
		if r.Delivered != "" {
			fmt.Fprintf(w, "  delivered: %s\n", r.Delivered)
		}
		if r.Pending != nil {
			fmt.Fprintf(w, "  NOT APPLIED IN MOODLE: %s\n", describePending(*r.Pending))
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
		if r.Err != nil && r.Status == StatusFailed {
			fmt.Fprintf(w, "  error: %v\n", r.Err)
		}
	}
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
