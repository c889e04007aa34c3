package transform

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ModelError says which model failed, where in its file, and at which step
// (describing, creating the table, inserting, indexing, ...).
type ModelError struct {
	Model string
	Path  string
	Line  int // 0 when PostgreSQL gave no position
	Step  string
	Err   error
	// Timeout names the setting that ended the statement, when one did.
	Timeout string
}

func (e *ModelError) Error() string {
	loc := e.Path
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.Path, e.Line)
	}
	msg := fmt.Sprintf("model %s (%s): %s: %v", e.Model, loc, e.Step, e.Err)
	var pe *pgconn.PgError
	if errors.As(e.Err, &pe) {
		if pe.Detail != "" {
			msg += "\n    detail: " + pe.Detail
		}
		if pe.Hint != "" {
			msg += "\n    hint: " + pe.Hint
		}
	}
	if e.Timeout != "" {
		msg += "\n    " + e.Timeout
	}
	return msg
}

func (e *ModelError) Unwrap() error { return e.Err }

// Failure is one check or test that returned rows, or could not run.
type Failure struct {
	Model    string // the model checked, or "" for a singular test
	Check    string // the check as written, or the test name
	Path     string
	Line     int
	Failures int64 // rows returned
	Columns  []string
	Sample   [][]string // up to Options.SampleRows rows, values as text
	Err      string     // set when the check itself failed to run
}

func (f Failure) String() string {
	var b strings.Builder
	what := f.Check
	if f.Model != "" {
		what = f.Model + ": " + f.Check
	}
	loc := f.Path
	if f.Line > 0 {
		loc = fmt.Sprintf("%s:%d", f.Path, f.Line)
	}
	if f.Err != "" {
		fmt.Fprintf(&b, "%s (%s) could not run: %s", what, loc, f.Err)
		return b.String()
	}
	fmt.Fprintf(&b, "%s (%s) failed: %d row", what, loc, f.Failures)
	if f.Failures != 1 {
		b.WriteString("s")
	}
	if len(f.Sample) > 0 {
		fmt.Fprintf(&b, "; first %d:", len(f.Sample))
		b.WriteString(formatRows(f.Columns, f.Sample, "      "))
	}
	return b.String()
}

// formatRows renders rows as an aligned text table, each line prefixed by indent.
func formatRows(cols []string, rows [][]string, indent string) string {
	width := make([]int, len(cols))
	clip := func(s string) string {
		s = strings.ReplaceAll(s, "\n", `\n`)
		if r := []rune(s); len(r) > 60 {
			return string(r[:57]) + "..."
		}
		return s
	}
	for i, c := range cols {
		width[i] = len([]rune(c))
	}
	for _, r := range rows {
		for i := range r {
			if i < len(width) {
				width[i] = max(width[i], len([]rune(clip(r[i]))))
			}
		}
	}
	var b strings.Builder
	line := func(vals []string) {
		b.WriteString("\n" + indent)
		for i, v := range vals {
			if i >= len(width) {
				break
			}
			v = clip(v)
			b.WriteString(v)
			if i < len(vals)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-len([]rune(v))+2))
			}
		}
	}
	line(cols)
	for _, r := range rows {
		line(r)
	}
	return b.String()
}

// CheckError is returned when checks or tests failed: the transaction was
// rolled back and the previous contents of every model stand.
type CheckError struct {
	Failures []Failure
	// Checked is how many checks and tests ran.
	Checked int
}

func (e *CheckError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d checks and tests failed; nothing was committed, the previous marts stand:", len(e.Failures), e.Checked)
	for _, f := range e.Failures {
		b.WriteString("\n  - ")
		b.WriteString(f.String())
	}
	return b.String()
}

// NotBuiltError says a selected model needs a model that has never been
// built and is not selected.
type NotBuiltError struct {
	Model, Dependency string
}

func (e *NotBuiltError) Error() string {
	return fmt.Sprintf("%s depends on %s, which has never been built and is not selected: select +%s, or run a full transform",
		e.Model, e.Dependency, e.Model)
}

// timeoutNote explains a statement ended by a configured timeout.
func timeoutNote(err error, statement, lock time.Duration) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return ""
	}
	switch pe.Code {
	case "57014": // query_canceled: statement_timeout (or a cancelled context)
		if statement > 0 {
			return fmt.Sprintf("the statement ran longer than warehouse.statement_timeout (%s), or was cancelled", statement)
		}
	case "55P03": // lock_not_available
		return fmt.Sprintf("waited longer than warehouse.lock_timeout (%s) for a lock: is something else (a dashboard query, a second transform) holding the relation?", lock)
	}
	return ""
}

func errorsIsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
