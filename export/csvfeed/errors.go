package csvfeed

import "fmt"

// RowError is a row the Writer refuses, named by row, username and column.
type RowError struct {
	Row      int // 1-based data row (the header is row 0)
	Username string
	Field    string // column name; "" for the row as a whole
	Reason   string
}

func (e *RowError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("profile CSV row %d (username %q): %s", e.Row, e.Username, e.Reason)
	}
	return fmt.Sprintf("profile CSV row %d (username %q): %s %s", e.Row, e.Username, e.Field, e.Reason)
}
