package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mimwarehouse/mim/internal/progress"
	"github.com/mimwarehouse/mim/internal/synth"
)

// Report is what a bench measured.
type Report struct {
	Scale       synth.Scale
	Latency     time.Duration
	Concurrency int
	Stages      []string
	// Database is where the bench worked (password hidden).
	Database string
	// Setup says what was built before measuring.
	Setup string
	Sites []SiteInfo
	// Figures are the table: each measurement beside its reference.
	Figures []Figure
	// Children are the mim commands run, with their time, CPU and memory.
	Children []Child
	// Sections are the details behind the figures.
	Sections []Section
	// PeakRSS is the bench process's own peak (simulated sites included).
	PeakRSS int64
	Elapsed time.Duration
}

// SiteInfo is one simulated site's size.
type SiteInfo struct {
	Name                               string
	Courses, Users, Enrolments, Groups int
	Archive                            bool
}

// Figure is one measurement beside its physical reference.
type Figure struct {
	Stage, What string
	Measured    string
	Reference   string
	// Ratio is measured ÷ reference (0: none), read as Unit says.
	Ratio  float64
	Unit   string
	Target string
	// Met says whether the target was met (nil: no target).
	Met  *bool
	Note string
}

// Child is one mim command the bench ran.
type Child struct {
	Command string
	Wall    time.Duration
	CPU     time.Duration
	PeakRSS int64
	Exit    int
}

// Section is a titled block of detail.
type Section struct{ Title, Text string }

func met(ok bool) *bool { return &ok }

func (b *bench) add(f Figure) {
	b.rep.Figures = append(b.rep.Figures, f)
	line := fmt.Sprintf("%s: %s: %s", f.Stage, f.What, f.Measured)
	if f.Reference != "" {
		line += "; " + f.Reference
	}
	if f.Ratio != 0 {
		line += fmt.Sprintf(": %.2f %s", f.Ratio, f.Unit)
	}
	b.logf("%s", line)
}

func (b *bench) child(command string, r *childRun) {
	b.rep.Children = append(b.rep.Children, Child{Command: command, Wall: r.Wall, CPU: r.CPU, PeakRSS: r.PeakRSS, Exit: r.Exit})
}

func (b *bench) section(title, text string) {
	b.rep.Sections = append(b.rep.Sections, Section{Title: title, Text: text})
}

// Write prints the report: the table of figures, the commands' time and
// memory, then the details.
func (r *Report) Write(w io.Writer) {
	fmt.Fprintf(w, "mim bench: scale %s, %d simulated sites at %s latency, concurrency %d; database %s\n",
		r.Scale, len(r.Sites), r.Latency, r.Concurrency, r.Database)
	if r.Setup != "" {
		fmt.Fprintf(w, "set-up: %s\n", r.Setup)
	}
	for _, s := range r.Sites {
		kind := ""
		if s.Archive {
			kind = " (archive)"
		}
		fmt.Fprintf(w, "  site %s%s: %s courses, %s users, %s enrolments, %s groups\n", s.Name, kind, progress.Count(int64(s.Courses)),
			progress.Count(int64(s.Users)), progress.Count(int64(s.Enrolments)), progress.Count(int64(s.Groups)))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "stage\tfigure\tmeasured\treference (same run)\tratio\ttarget\tmet\t")
	for _, f := range r.Figures {
		ratio := ""
		if f.Ratio != 0 {
			ratio = fmt.Sprintf("%.2f %s", f.Ratio, f.Unit)
		}
		ok := ""
		if f.Met != nil {
			ok = map[bool]string{true: "yes", false: "NO"}[*f.Met]
		}
		measured := f.Measured
		if f.Note != "" && f.Note != "succeeded" {
			measured += " (" + f.Note + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", f.Stage, f.What, measured, f.Reference, ratio, f.Target, ok)
	}
	tw.Flush()
	if len(r.Children) > 0 {
		fmt.Fprintln(w, "\nmim commands run (child processes: their own time, CPU and peak memory):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  command\twall\tCPU\tpeak RSS\texit\t")
		for _, c := range r.Children {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t\n", c.Command, secs(c.Wall), secs(c.CPU), mibs(c.PeakRSS), c.Exit)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "the bench process itself (synthetic university, simulated sites, load and IMS stages): peak RSS %s\n", mibs(r.PeakRSS))
	for _, s := range r.Sections {
		fmt.Fprintf(w, "\n%s\n%s", s.Title, indent(s.Text))
	}
	fmt.Fprintf(w, "\nbench finished in %s\n", secs(r.Elapsed))
}

func indent(s string) string {
	var sb strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		sb.WriteString("  " + l + "\n")
	}
	return sb.String()
}

// secs formats a duration for the table.
func secs(d time.Duration) string {
	switch {
	case d >= 10*time.Minute:
		return d.Round(time.Second).String()
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
}

func mibs(n int64) string {
	if n <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f MiB", float64(n)/mib)
}
