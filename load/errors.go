package load

import (
	"errors"
	"fmt"

	"github.com/mimwarehouse/mim/extract"
)

// ErrClosed is returned by a writer used after Commit or Abort.
var ErrClosed = errors.New("the entity writer was already committed or aborted")

// RecordError is a record the loader refuses: its key or scope is not text
// PostgreSQL can store, or its payload is not a JSON object (see Canonical).
// The record is not written; the writer stays usable, and the source decides
// whether to report the row with RowError or to give up on the entity.
type RecordError struct {
	Entity extract.EntityID
	Key    string
	Field  string // key, scope or payload
	Err    error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("loading %s: record %q: %s: %v", e.Entity, truncate(e.Key, 200), e.Field, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// InUseError says a second writer was asked for an entity whose writer is
// still open in the same loader: its records would race the first one's.
type InUseError struct{ Entity extract.EntityID }

func (e *InUseError) Error() string {
	return fmt.Sprintf("loading %s: a writer for this entity is already open in this run", e.Entity)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
