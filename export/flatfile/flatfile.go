// Package flatfile writes and checks the enrolment file Moodle's
// enrol_flatfile reads (and Open LMS Conduit, and the PowerCampus sync):
// one command per line, "add|del, role, user idnumber, course idnumber[,
// start, end]". Moodle's reader is not a CSV parser: it splits on commas
// (semicolons if a line has none), trims, lower-cases the operation and the
// role, and has no escaping, so every value is checked before a byte is
// written and the finished file is re-read the way Moodle reads it.
//
// What MIM relies on, read from enrol/flatfile/lib.php (Moodle 4.5), is in
// docs/contracts.md §2 ("The flat-file feed").
package flatfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Op is a line's operation.
type Op string

// The operations enrol_flatfile knows.
const (
	Add Op = "add"
	Del Op = "del"
)

// Line is one command.
type Line struct {
	Op Op
	// Role is the role's alias on the site: its shortname unless the site
	// renamed it (the setting map_<roleid>).
	Role   string
	User   string // user.idnumber
	Course string // course.idnumber
	// Start and End are the enrolment's start and end (0: none). A start in
	// the future parks the command in Moodle until then.
	Start, End time.Time
}

// FieldError is a line the writer refuses: nothing of it was written.
type FieldError struct {
	Line  Line
	Field string
	Why   string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("flat file: %s %s of user %q in course %q: %s %s", e.Line.Op, e.Line.Role, e.Line.User, e.Line.Course, e.Field, e.Why)
}

// IsFieldError reports a refused line (the caller skips it and goes on).
func IsFieldError(err error) bool {
	var fe *FieldError
	return errors.As(err, &fe)
}

var roleAlias = regexp.MustCompile(`^[a-z0-9_-]+$`)

// checkValue says why an identifier cannot be written, or "". Moodle splits
// on commas (or semicolons), trims, and strips quotes from every field when
// the first starts with one: none of those may be in a value.
func checkValue(v string) string {
	switch {
	case v == "":
		return "is empty"
	case strings.TrimSpace(v) != v:
		return "has surrounding spaces (Moodle trims them, and then matches nothing)"
	case strings.ContainsAny(v, ",;"):
		return "contains a comma or semicolon (the flat file has no escaping)"
	case strings.ContainsAny(v, `'"`):
		return "contains a quote (Moodle strips quotes from every field)"
	case !utf8.ValidString(v):
		return "is not valid UTF-8"
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return "contains a control character"
		}
	}
	return ""
}

// Writer writes one flat file.
type Writer struct {
	w     *bufio.Writer
	stats Stats
}

// Stats counts what a file holds.
type Stats struct {
	Adds, Dels int
}

// NewWriter starts a file.
func NewWriter(w io.Writer) *Writer { return &Writer{w: bufio.NewWriter(w)} }

// Write writes one line, or refuses it with a *FieldError and writes
// nothing.
func (w *Writer) Write(l Line) error {
	bad := func(field, why string) error { return &FieldError{Line: l, Field: field, Why: why} }
	if l.Op != Add && l.Op != Del {
		return bad("operation", fmt.Sprintf("%q is not add or del", l.Op))
	}
	if !roleAlias.MatchString(l.Role) {
		return bad("role", fmt.Sprintf("%q is not a role alias (lower-case letters, digits, _ and -)", l.Role))
	}
	if why := checkValue(l.User); why != "" {
		return bad("user idnumber", why)
	}
	if why := checkValue(l.Course); why != "" {
		return bad("course idnumber", why)
	}
	var start, end int64
	if !l.Start.IsZero() {
		start = l.Start.Unix()
	}
	if !l.End.IsZero() {
		end = l.End.Unix()
	}
	if start < 0 || end < 0 {
		return bad("dates", "are before 1970")
	}
	if end != 0 && start > end {
		// Moodle ignores such a line ("Start time was later than end time").
		return bad("dates", fmt.Sprintf("start %s is after end %s", l.Start.UTC().Format(time.RFC3339), l.End.UTC().Format(time.RFC3339)))
	}
	line := string(l.Op) + "," + l.Role + "," + l.User + "," + l.Course
	if start != 0 || end != 0 {
		line += "," + strconv.FormatInt(start, 10) + "," + strconv.FormatInt(end, 10)
	}
	if _, err := w.w.WriteString(line + "\n"); err != nil {
		return err
	}
	if l.Op == Add {
		w.stats.Adds++
	} else {
		w.stats.Dels++
	}
	return nil
}

// Stats returns what was written so far.
func (w *Writer) Stats() Stats { return w.stats }

// Close flushes the file; it does not close the underlying io.Writer.
func (w *Writer) Close() error { return w.w.Flush() }

// Validate re-reads a file the way enrol_flatfile does and refuses one that
// Moodle would read differently from what MIM meant: a line with a byte
// order mark, a wrong number of fields, an unknown operation, an empty or
// spaced identifier, quotes, non-numeric times or a start after its end.
// It returns what the file holds.
func Validate(r io.Reader) (Stats, error) {
	var st Stats
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		text := sc.Text()
		bad := func(format string, args ...any) (Stats, error) {
			return st, fmt.Errorf("flat file line %d %q: %s", n, clip(text), fmt.Sprintf(format, args...))
		}
		if n == 1 && strings.HasPrefix(text, "\ufeff") {
			return bad("starts with a byte order mark (Moodle would not recognise the operation)")
		}
		if strings.TrimSpace(text) == "" {
			return bad("is empty (Moodle skips it; MIM never writes one)")
		}
		if strings.ContainsAny(text, "\r;'\"") {
			return bad("holds a carriage return, semicolon or quote")
		}
		fields := strings.Split(text, ",")
		if len(fields) != 4 && len(fields) != 6 {
			return bad("has %d fields, not 4 or 6", len(fields))
		}
		for i, f := range fields {
			if f == "" || strings.TrimSpace(f) != f {
				return bad("field %d is empty or spaced", i+1)
			}
		}
		switch Op(fields[0]) {
		case Add:
			st.Adds++
		case Del:
			st.Dels++
		default:
			return bad("operation %q is not add or del", fields[0])
		}
		if !roleAlias.MatchString(fields[1]) {
			return bad("role %q is not a lower-case alias", fields[1])
		}
		if len(fields) == 6 {
			start, err1 := strconv.ParseInt(fields[4], 10, 64)
			end, err2 := strconv.ParseInt(fields[5], 10, 64)
			if err1 != nil || err2 != nil || start < 0 || end < 0 {
				return bad("times are not Unix seconds")
			}
			if end != 0 && start > end {
				return bad("start is after end (Moodle ignores the line)")
			}
		}
	}
	if err := sc.Err(); err != nil {
		return st, fmt.Errorf("re-reading the flat file: %w", err)
	}
	return st, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
