package extract

import (
	"context"
	"encoding/json"
)

// Record is one object read from a source.
type Record struct {
	// Key identifies the object within its (source, instance, entity), stably
	// across runs: a SITS student code, "courseid:userid" for a Moodle
	// enrolment, a composite natural key joined with "|".
	Key string
	// Scope is the unit of completeness the record was read under: the Moodle
	// course id an enrolment was read from, or "" for an entity read as one
	// full snapshot.
	Scope string
	// Payload is a JSON object: exactly what Moodle sent, or a SQL row with
	// explicitly typed values (so it is the same whichever driver read it).
	Payload json.RawMessage
}

// EntityID names one entity of one source instance, the unit the loader
// commits in one transaction.
type EntityID struct {
	Source   string // sits, cmis, moodle
	Instance string // the Moodle site name, or the source's own name (sits, cmis)
	Entity   string // student, student_enrl, users, enrolments, ...
}

func (id EntityID) String() string { return id.Source + ":" + id.Instance + "/" + id.Entity }

// Result is what loading one entity did.
type Result struct {
	In        int64 // records written
	New       int64
	Changed   int64
	Unchanged int64
	Deleted   int64 // keys of completed scopes that were not written this run
	// FailedScopes are the scopes reported failed: their rows were kept as
	// they were, neither updated as deleted nor counted.
	FailedScopes []string
}

// EntityWriter receives the records of one entity and commits them as one
// unit. It is safe for concurrent use (a Moodle extractor writes enrolments
// of several courses at once).
//
// The deletion contract: a key is marked deleted only when its scope was
// declared complete with ScopeComplete in this run and the key was not
// written. A scope that is neither complete nor failed is treated as failed.
// So a course whose read failed half-way keeps every one of its rows: a
// partial extract never looks like a mass drop.
type EntityWriter interface {
	// Write adds one record. It may block to apply back-pressure.
	Write(ctx context.Context, r Record) error
	// ScopeComplete declares that every record of scope has been written.
	ScopeComplete(scope string)
	// ScopeFailed declares that scope could not be read completely.
	ScopeFailed(scope string, err error)
	// RowError records a source row that could not be read (a bad date,
	// text that is not UTF-8). key names the row as far as it could be read
	// and err says which column and why. The row is not written; it is
	// counted in the ledger's errors and the first few are kept in the
	// step's detail. Whether too many bad rows fail the entity is the
	// source's decision.
	RowError(key string, err error)
	// Commit lands everything written in one transaction and returns counts.
	// After Commit the writer must not be used.
	Commit(ctx context.Context) (Result, error)
	// Abort discards everything written; raw is left exactly as it was.
	// It is safe to call after Commit (it then does nothing).
	Abort()
}

// ScopeLister is implemented by an EntityWriter that can say which scopes of
// its entity hold live rows, so that a source can declare complete (and so
// empty) the scopes of things it no longer has: a course deleted from
// Moodle leaves no scope to be declared, and its rows would otherwise stay
// current for ever. The raw loader's writers implement it; a source must
// work without it.
type ScopeLister interface {
	// LiveScopes lists the non-empty scopes that hold rows not marked
	// deleted, as they stood before this run.
	LiveScopes(ctx context.Context) ([]string, error)
}

// RunIdentifier is implemented by a Sink that lands its records under a
// recorded run (the raw loader: the run ledger's run), so that a source
// can record what it learnt about its system under the same run. A source
// must work without it.
type RunIdentifier interface {
	// RunID is the run the sink's records land under.
	RunID() int64
}

// Sink opens entity writers; the raw loader implements it.
type Sink interface {
	Entity(ctx context.Context, id EntityID) (EntityWriter, error)
}

// Options are the operator's choices for one extraction.
type Options struct {
	// Entities limits the extraction to these entity names; empty means
	// every entity the configuration enables. A source rejects a name it
	// does not know, listing the ones it does.
	Entities []string
	// Progress, if not nil, is told how far each entity has got, for a
	// progress bar on a terminal. Sources call it from any goroutine.
	Progress Progress
}

// Progress receives a source's progress. Units are whatever the source
// counts naturally: rows for a SQL entity, courses for a per-course Moodle
// entity.
type Progress interface {
	// Expect says how many units entity will have in all, when known.
	Expect(entity string, units int64)
	// Done adds n finished units to entity.
	Done(entity string, n int64)
}

// Source is something MIM extracts: SITS, CMIS, or one Moodle site.
//
// Extract reads its entities and streams them to the sink. For every entity
// it opens a writer, writes records, declares each scope complete or failed,
// and commits; an entity it cannot read at all is aborted (raw keeps the last
// good state) and reported in the returned error, while the other entities
// still go ahead. Extract returns an error if any entity failed; it never
// logs and returns the same error.
type Source interface {
	// Name is how the operator selects it: "sits", "cmis", "moodle:main".
	Name() string
	Extract(ctx context.Context, sink Sink) error
}
