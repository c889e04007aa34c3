package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration, located by its key path
// (for example "moodle[1].rate_per_second") and, when known, its line.
type Problem struct {
	Path    string
	Line    int
	Message string
}

func (p Problem) String() string {
	loc := p.Path
	if loc == "" {
		loc = "(top level)"
	}
	if p.Line > 0 {
		loc = fmt.Sprintf("%s (line %d)", loc, p.Line)
	}
	return loc + ": " + p.Message
}

// Error lists every problem found in one configuration, so an operator fixes
// them all in one pass instead of one per attempt.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	name := e.File
	if name == "" {
		name = "configuration"
	}
	if len(e.Problems) == 1 && e.Problems[0].Path == "" && e.Problems[0].Line == 0 {
		// One problem with the whole file (it cannot be read, is not YAML).
		return name + ": " + e.Problems[0].Message
	}
	fmt.Fprintf(&b, "%s has %d problem", name, len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteString("s")
	}
	b.WriteString(":")
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.String())
	}
	return b.String()
}

// ExitCode makes a configuration error a usage error (exit 2) for the CLI.
func (e *Error) ExitCode() int { return 2 }

// problems collects problems while a configuration is decoded and validated.
// It keeps one problem per key path (a value that failed to decode is not
// also reported as missing) and remembers the line of every decoded key, so
// validation problems point at the line too.
type problems struct {
	list  []Problem
	lines map[string]int
	bad   map[string]bool
	// expanded maps each value that came from the environment to the
	// reference it was written as, so no problem ever prints it.
	expanded map[string]string
}

// expandedValue notes that value came from the environment, written as raw.
func (ps *problems) expandedValue(raw, value string) {
	if strings.TrimSpace(value) == "" {
		return
	}
	if ps.expanded == nil {
		ps.expanded = map[string]string{}
	}
	ps.expanded[value] = strings.TrimSpace(raw)
}

// scrub writes, in a problem, every value that came from the environment
// as the reference it was given as.
func (ps *problems) scrub(msg string) string {
	for value, raw := range ps.expanded {
		msg = strings.ReplaceAll(msg, strconv.Quote(value), raw)
		if len(value) >= 4 {
			msg = strings.ReplaceAll(msg, value, raw)
		}
	}
	return msg
}

func (ps *problems) seen(path string, line int) {
	if ps.lines == nil {
		ps.lines = map[string]int{}
	}
	ps.lines[path] = line
}

func (ps *problems) add(path string, line int, format string, args ...any) {
	if ps.bad[path] {
		return
	}
	if ps.bad == nil {
		ps.bad = map[string]bool{}
	}
	ps.bad[path] = true
	if line == 0 {
		line = ps.lines[path]
	}
	ps.list = append(ps.list, Problem{Path: path, Line: line, Message: fmt.Sprintf(format, args...)})
}

// sorted returns the problems in file order; problems without a line (a
// required key that is absent) come after those with one, in the order found.
func (ps *problems) sorted() []Problem {
	out := append([]Problem(nil), ps.list...)
	for i := range out {
		out[i].Message = ps.scrub(out[i].Message)
	}
	sort.SliceStable(out, func(i, j int) bool {
		li, lj := out[i].Line, out[j].Line
		if li == 0 || lj == 0 {
			return li != 0 && lj == 0
		}
		return li < lj
	})
	return out
}
