package feeds

import (
	"fmt"
	"io"
	"strings"
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
			fmt.Fprintf(w, "  file: %s (%d bytes, sha256 %s)\n", r.File, r.Bytes, r.SHA256)
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
	switch r.Feed {
	case IMS:
		if r.Status == StatusSkipped {
			return ""
		}
		s := fmt.Sprintf("target %d rows: %d adds, %d changes, %d drops", r.Rows, r.Adds, r.Changes, r.Drops)
		if r.Held > 0 {
			s += fmt.Sprintf(", %d drops held in %d courses", r.Held, len(r.HeldCourses))
		}
		if r.Skipped > 0 {
			s += fmt.Sprintf(", %d refused by the writer", r.Skipped)
		}
		return s
	case Profile:
		if r.Status == StatusSkipped {
			return ""
		}
		return fmt.Sprintf("%d accounts, %d with changed values, %d refused", r.Rows, r.Changes, r.Skipped)
	case Tutor:
		if r.Status == StatusSkipped {
			return ""
		}
		return fmt.Sprintf("%d pairs: %d added, %d removed, %d mart rows left out", r.Rows, r.Adds, r.Drops, r.Skipped)
	case Merge:
		if r.Status == StatusSkipped {
			return ""
		}
		return fmt.Sprintf("%d candidates, %d pairs listed, %d left out", r.Rows, r.Adds, r.Skipped)
	}
	return ""
}
