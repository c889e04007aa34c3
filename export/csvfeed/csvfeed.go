// Package csvfeed writes the profile-field CSV that Moodle's tool_uploaduser
// CLI applies to existing accounts (docs/formats.md §2): keyed on
// username, with only the profile_field_<shortname> columns MIM owns, every
// value checked against its field's type before a byte is written, because
// one bad column aborts the whole upload and an empty cell clears a field.
package csvfeed

import (
	"encoding/csv"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Type is a Moodle custom profile field type.
type Type string

// The profile field types MIM writes.
const (
	Text     Type = "text"
	TextArea Type = "textarea"
	Menu     Type = "menu"
	Checkbox Type = "checkbox"
	Date     Type = "date" // datetime field, written YYYY-MM-DD
)

// Field is one profile field column.
type Field struct {
	// Shortname is the field's shortname on the site; the column is
	// profile_field_<Shortname>.
	Shortname string
	// Type decides which values are valid; empty means Text.
	Type Type
	// Options are a menu's option lines, exactly as configured on the site.
	// A value outside them would silently end up empty, so it is refused.
	// Empty means the options are not checked.
	Options []string
	// Required refuses an empty value (with --uuupdatetype=1 an empty cell
	// clears the field on the site).
	Required bool
	// Standard marks a standard user field (only idnumber, see IDNumber):
	// its column is its name.
	Standard bool
}

// IDNumber is the standard field idnumber, which the profile CSV carries
// only to move a student code after a merge: an empty cell clears it.
var IDNumber = Field{Shortname: "idnumber", Standard: true}

// Column is the CSV column name of the field.
func (f Field) Column() string {
	if f.Standard {
		return f.Shortname
	}
	return "profile_field_" + f.Shortname
}

var shortnameRe = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// Writer writes one profile CSV: a header, then one row per user.
type Writer struct {
	cw     *csv.Writer
	fields []Field
	seen   map[string]int // username -> row
	rows   int
	record []string
	closed bool
}

// NewWriter checks the fields and writes the header (username, then the
// fields' columns in order).
func NewWriter(w io.Writer, fields []Field) (*Writer, error) {
	if len(fields) == 0 {
		return nil, fmt.Errorf("profile CSV: no profile fields configured")
	}
	seen := map[string]bool{}
	header := []string{"username"}
	fs := make([]Field, len(fields))
	for i, f := range fields {
		if f.Type == "" {
			f.Type = Text
		}
		if !shortnameRe.MatchString(f.Shortname) {
			return nil, fmt.Errorf("profile CSV: field %d: shortname %q is not letters, digits and _", i+1, f.Shortname)
		}
		// Standard columns act on the account itself (auth switches its
		// login, suspended and deleted act under their own flags): only
		// idnumber is ever written.
		if f.Standard && (f.Shortname != IDNumber.Shortname || f.Type != Text || f.Required) {
			return nil, fmt.Errorf("profile CSV: field %d: %q is not a standard field MIM writes (only idnumber, as text)", i+1, f.Shortname)
		}
		// Moodle matches the column exactly, or in lower case as a fallback,
		// and a repeated column aborts the whole file.
		low := strings.ToLower(f.Column())
		if seen[low] {
			return nil, fmt.Errorf("profile CSV: field %s is listed twice", f.Shortname)
		}
		seen[low] = true
		switch f.Type {
		case Text, TextArea, Checkbox, Date:
			if len(f.Options) > 0 {
				return nil, fmt.Errorf("profile CSV: field %s: options are only for menu fields", f.Shortname)
			}
		case Menu:
			for _, o := range f.Options {
				if err := checkValue(o); err != "" || o == "" || strings.TrimSpace(o) != o {
					return nil, fmt.Errorf("profile CSV: field %s: option %q is not a usable menu option", f.Shortname, o)
				}
			}
		default:
			return nil, fmt.Errorf("profile CSV: field %s: type %q is not one of text, textarea, menu, checkbox, date", f.Shortname, f.Type)
		}
		f.Options = slices.Clone(f.Options)
		fs[i] = f
		header = append(header, f.Column())
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return nil, fmt.Errorf("writing profile CSV header: %w", err)
	}
	return &Writer{cw: cw, fields: fs, seen: map[string]int{}, record: make([]string, len(fs)+1)}, nil
}

// Write writes one user's row; values are in the order of the fields. A
// refused row returns a *RowError and writes nothing, so the caller may
// skip it and go on.
func (w *Writer) Write(username string, values ...string) error {
	return w.write(username, false, values)
}

// WriteCurrent writes a row whose values are those the site already has
// (a row sent for another column, the idnumber): an empty value in a
// required field is written, since it changes nothing; every other check
// holds.
func (w *Writer) WriteCurrent(username string, values ...string) error {
	return w.write(username, true, values)
}

func (w *Writer) write(username string, current bool, values []string) error {
	if w.closed {
		return fmt.Errorf("profile CSV: write after Close")
	}
	row := w.rows + 1
	bad := func(field, format string, args ...any) error {
		return &RowError{Row: row, Username: username, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if len(values) != len(w.fields) {
		return bad("", "has %d values for %d fields; every row has exactly as many fields as the header", len(values), len(w.fields))
	}
	switch {
	case username == "":
		return bad("username", "is empty")
	case strings.TrimSpace(username) != username || strings.ContainsAny(username, " \t"):
		return bad("username", "%q contains spaces", username)
	case strings.ToLower(username) != username:
		return bad("username", "%q is not lower case (Moodle usernames are)", username)
	}
	if msg := checkValue(username); msg != "" {
		return bad("username", "%q %s", username, msg)
	}
	if prev, dup := w.seen[username]; dup {
		return bad("username", "also on row %d", prev)
	}
	w.record[0] = username
	for i, f := range w.fields {
		v := strings.TrimSpace(values[i])
		if msg := checkValue(v); msg != "" {
			return bad(f.Column(), "%q %s", clip(v), msg)
		}
		if v == "" {
			if f.Required && !current {
				return bad(f.Column(), "is empty (an empty cell clears the field on the site)")
			}
			w.record[i+1] = ""
			continue
		}
		switch f.Type {
		case Menu:
			if len(f.Options) > 0 && !slices.Contains(f.Options, v) {
				return bad(f.Column(), "%q is not one of the menu's options (%s)", clip(v), strings.Join(f.Options, ", "))
			}
		case Checkbox:
			if v != "0" && v != "1" {
				return bad(f.Column(), "%q is not 0 or 1", clip(v))
			}
		case Date:
			if !isDate(v) {
				return bad(f.Column(), "%q is not a date written YYYY-MM-DD", clip(v))
			}
		}
		w.record[i+1] = v
	}
	if err := w.cw.Write(w.record); err != nil {
		return fmt.Errorf("writing profile CSV row %d: %w", row, err)
	}
	w.rows++
	w.seen[username] = row
	return nil
}

// Rows is the number of rows written.
func (w *Writer) Rows() int { return w.rows }

// Close flushes the file; it does not close the underlying io.Writer.
func (w *Writer) Close() error {
	w.closed = true
	w.cw.Flush()
	if err := w.cw.Error(); err != nil {
		return fmt.Errorf("writing profile CSV: %w", err)
	}
	return nil
}

// checkValue says why a value cannot go into the file, or "".
func checkValue(v string) string {
	if !utf8.ValidString(v) {
		return "is not valid UTF-8"
	}
	for _, r := range v {
		switch {
		case r == '\n' || r == '\r':
			return "contains a line break"
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			return "contains a control character"
		}
	}
	// PHP's CSV reader treats a backslash before a quote as an escape: the
	// quote would not end the field.
	if strings.Contains(v, `\"`) {
		return `contains \" (PHP's CSV reader misreads a backslash before a quote)`
	}
	if strings.HasSuffix(v, `\`) {
		return `ends with \ (PHP's CSV reader would take the closing quote as escaped)`
	}
	return ""
}

func isDate(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	n := [3]int{}
	for i, part := range []string{s[0:4], s[5:7], s[8:10]} {
		for j := 0; j < len(part); j++ {
			if part[j] < '0' || part[j] > '9' {
				return false
			}
			n[i] = n[i]*10 + int(part[j]-'0')
		}
	}
	y, m, d := n[0], n[1], n[2]
	if y < 1900 || m < 1 || m > 12 || d < 1 {
		return false
	}
	days := [...]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m-1]
	if m == 2 && (y%4 == 0 && y%100 != 0 || y%400 == 0) {
		days = 29
	}
	return d <= days
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
