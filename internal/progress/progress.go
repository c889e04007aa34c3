// Package progress shows long stages as they run: one bar per source and
// entity, redrawn in place on a terminal, or a periodic log line per entity
// when the output is a file or a journal. It also formats the summary
// tables commands print at the end.
package progress

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// Display tracks the progress of every (source, entity) of a stage. Its
// methods are safe for concurrent use; a nil *Display does nothing.
type Display struct {
	w      io.Writer     // terminal mode
	logger *slog.Logger  // log mode
	every  time.Duration // redraw or log interval
	now    func() time.Time

	mu    sync.Mutex
	lines []*line
	index map[string]*line
	drawn int // lines drawn last time (terminal mode)

	stop chan struct{}
	done chan struct{}
}

type line struct {
	source, entity string
	expect, done   int64
	started        time.Time
	finished       bool
	outcome        string // shown once finished
	logged         int64  // done at the last log line
}

// NewTerminal redraws bars on w (a terminal) every 200 ms.
func NewTerminal(w io.Writer) *Display {
	return &Display{w: w, every: 200 * time.Millisecond, now: time.Now, index: map[string]*line{}}
}

// NewLog writes one log line per entity that moved, every interval.
func NewLog(logger *slog.Logger, every time.Duration) *Display {
	return &Display{logger: logger, every: every, now: time.Now, index: map[string]*line{}}
}

// IsTerminal reports whether w is an interactive terminal (a character
// device other than /dev/null, with TERM not "dumb").
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, null) {
		return false
	}
	return true
}

// Start begins redrawing (or logging) until Stop.
func (d *Display) Start() {
	if d == nil || d.stop != nil {
		return
	}
	d.stop, d.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(d.done)
		t := time.NewTicker(d.every)
		defer t.Stop()
		for {
			select {
			case <-d.stop:
				return
			case <-t.C:
				d.Flush()
			}
		}
	}()
}

// Stop ends the display after a last redraw.
func (d *Display) Stop() {
	if d == nil || d.stop == nil {
		return
	}
	close(d.stop)
	<-d.done
	d.stop = nil
	if d.w != nil {
		d.Flush()
	}
}

// Source returns the tracker a source reports to; it satisfies
// extract.Progress.
func (d *Display) Source(name string) *Tracker { return &Tracker{d: d, source: name} }

// Tracker is one source's view of a Display.
type Tracker struct {
	d      *Display
	source string
}

// Expect says how many units entity will have in all.
func (t *Tracker) Expect(entity string, units int64) {
	if t == nil || t.d == nil {
		return
	}
	t.d.update(t.source, entity, func(l *line) { l.expect = units })
}

// Done adds n finished units to entity.
func (t *Tracker) Done(entity string, n int64) {
	if t == nil || t.d == nil {
		return
	}
	t.d.update(t.source, entity, func(l *line) { l.done += n })
}

// Finish marks an entity finished, with a short outcome ("12,345 rows",
// "FAILED") shown in place of its bar.
func (d *Display) Finish(source, entity, outcome string) {
	if d == nil {
		return
	}
	d.update(source, entity, func(l *line) { l.finished, l.outcome = true, outcome })
}

func (d *Display) update(source, entity string, f func(*line)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := source + "\x00" + entity
	l := d.index[k]
	if l == nil {
		l = &line{source: source, entity: entity, started: d.now()}
		d.index[k] = l
		d.lines = append(d.lines, l)
	}
	f(l)
}

// Flush draws the bars now (terminal) or logs the entities that moved.
func (d *Display) Flush() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w != nil {
		d.draw()
		return
	}
	for _, l := range d.lines {
		if l.finished || l.done == l.logged {
			continue
		}
		l.logged = l.done
		attrs := []any{"source", l.source, "entity", l.entity, "done", l.done}
		if l.expect > 0 {
			attrs = append(attrs, "expected", l.expect)
		}
		d.logger.Info("progress", attrs...)
	}
}

const barWidth = 24

func (d *Display) draw() {
	var b strings.Builder
	if d.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", d.drawn) // back to the first line drawn
	}
	sw, ew := 0, 0
	for _, l := range d.lines {
		sw, ew = max(sw, len(l.source)), max(ew, len(l.entity))
	}
	now := d.now()
	for _, l := range d.lines {
		fmt.Fprintf(&b, "\r\x1b[2K%-*s  %-*s  %s\n", sw, l.source, ew, l.entity, l.status(now))
	}
	d.drawn = len(d.lines)
	io.WriteString(d.w, b.String())
}

func (l *line) status(now time.Time) string {
	elapsed := now.Sub(l.started).Round(time.Second)
	if l.finished {
		return l.outcome
	}
	if l.expect <= 0 {
		return fmt.Sprintf("%s done  %s", Count(l.done), elapsed)
	}
	frac := float64(l.done) / float64(l.expect)
	frac = min(max(frac, 0), 1)
	n := int(frac * barWidth)
	return fmt.Sprintf("[%s%s] %s/%s %3.0f%%  %s", strings.Repeat("#", n), strings.Repeat("-", barWidth-n),
		Count(l.done), Count(l.expect), frac*100, elapsed)
}

// Count formats n with thousands separators: 1,234,567.
func Count(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Counted writes n with thousands separators and the noun that agrees with
// it: "1 candidate", "1,609 course mappings". plural is what more than one
// (or none) is called.
func Counted(n int64, singular, plural string) string {
	if n == 1 || n == -1 {
		return Count(n) + " " + singular
	}
	return Count(n) + " " + plural
}

// Column is one column of a Table.
type Column struct {
	Name  string
	Right bool // right-aligned (numbers)
}

// Table is a summary table: a header and aligned rows, written at once.
type Table struct {
	cols []Column
	rows [][]string
}

// NewTable returns a table with these columns.
func NewTable(cols ...Column) *Table { return &Table{cols: cols} }

// Add appends a row; missing cells are blank, extra cells are an error
// (a programming mistake) and panic.
func (t *Table) Add(cells ...string) {
	if len(cells) > len(t.cols) {
		panic(fmt.Sprintf("progress: %d cells for %d columns", len(cells), len(t.cols)))
	}
	row := make([]string, len(t.cols))
	copy(row, cells)
	t.rows = append(t.rows, row)
}

// Len is the number of rows added.
func (t *Table) Len() int { return len(t.rows) }

// SortBy orders the rows by the given columns' text.
func (t *Table) SortBy(cols ...int) {
	sort.SliceStable(t.rows, func(i, j int) bool {
		for _, c := range cols {
			if t.rows[i][c] != t.rows[j][c] {
				return t.rows[i][c] < t.rows[j][c]
			}
		}
		return false
	})
}

// Write prints the table, columns two spaces apart.
func (t *Table) Write(w io.Writer) error {
	width := make([]int, len(t.cols))
	for i, c := range t.cols {
		width[i] = len(c.Name)
	}
	for _, r := range t.rows {
		for i, cell := range r {
			width[i] = max(width[i], len([]rune(cell)))
		}
	}
	var b strings.Builder
	write := func(cells []string) {
		var line strings.Builder
		for i, cell := range cells {
			if i > 0 {
				line.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[i]-len([]rune(cell)))
			if t.cols[i].Right {
				line.WriteString(pad + cell)
			} else {
				line.WriteString(cell + pad)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
	header := make([]string, len(t.cols))
	for i, c := range t.cols {
		header[i] = c.Name
	}
	write(header)
	for _, r := range t.rows {
		write(r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
