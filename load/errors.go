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

// SuspectError says an entity's read was not believed: it came back empty,
// or would have deleted more of the entity than its shrink limit allows,
// against its last complete read, and completeness_override was not armed.
// Nothing of the entity was loaded: raw keeps its last complete read.
type SuspectError struct {
	Entity  extract.EntityID
	Live    int64 // live records in the scopes read completely
	Deleted int64 // of them, those this read would have deleted
	Written int64 // records this read wrote in those scopes
	Limit   int   // the entity's shrink limit, percent
}

func (e *SuspectError) Error() string {
	return fmt.Sprintf("%s is suspect: %s; nothing of it was loaded, raw keeps its last complete read. "+
		"If the source really lost them, accept this read once with "+
		"`mim settings set completeness_override true --reason \"...\"`", e.Entity, e.what())
}

func (e *SuspectError) what() string {
	if e.Written == 0 {
		return fmt.Sprintf("it came back empty where its last complete read had %d records", e.Live)
	}
	return fmt.Sprintf("this read would delete %d of its %d records (%.1f%%), more than its shrink limit %d%%",
		e.Deleted, e.Live, 100*float64(e.Deleted)/float64(e.Live), e.Limit)
}

// ExitCode makes a suspect read a guard's refusal (exit 3).
func (e *SuspectError) ExitCode() int { return 3 }
