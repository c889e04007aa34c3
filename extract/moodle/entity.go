package moodle

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/mimwarehouse/mim/extract"
)

// entityOut is one raw entity being landed. A nil *entityOut stands for an
// entity that is read (because another needs it) but not landed: its
// methods do nothing, so readers need not ask.
type entityOut struct {
	x    *extraction
	name string
	w    extract.EntityWriter

	mu       sync.Mutex
	fatalErr error // the entity cannot be read at all: it is aborted
	closed   bool  // committed or aborted
}

// open returns the writer of entity, or nil when it is not landed or the
// sink refused it (that is recorded as the entity's failure).
func (x *extraction) open(ctx context.Context, entity string) *entityOut {
	if !x.land[entity] {
		return nil
	}
	x.mu.Lock()
	o := x.out[entity]
	x.mu.Unlock()
	if o != nil {
		return o
	}
	w, err := x.sink.Entity(ctx, extract.EntityID{Source: "moodle", Instance: x.site.Name, Entity: entity})
	if err != nil {
		x.fail(fmt.Errorf("%s: opening the raw writer: %w", entity, err))
		return nil
	}
	o = &entityOut{x: x, name: entity, w: w}
	x.mu.Lock()
	x.out[entity] = o
	x.mu.Unlock()
	return o
}

// write lands one record. A record the sink refuses (its payload is not
// storable JSON) is reported as a bad row and fails its scope, so that the
// key is not taken for deleted.
func (o *entityOut) write(ctx context.Context, key, scope string, payload json.RawMessage) error {
	if o == nil || o.isFatal() {
		return nil
	}
	err := o.w.Write(ctx, extract.Record{Key: key, Scope: scope, Payload: payload})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if o.isFatal() { // aborted meanwhile by another course's fatal error
		return nil
	}
	o.w.RowError(key, err)
	o.fail(scope, fmt.Errorf("record %s could not be stored: %w", key, err))
	return nil
}

// complete declares scope read completely.
func (o *entityOut) complete(scope string) {
	if o == nil {
		return
	}
	o.w.ScopeComplete(scope)
}

// fail declares scope not read completely: its rows keep their last state.
func (o *entityOut) fail(scope string, err error) {
	if o == nil {
		return
	}
	o.w.ScopeFailed(scope, err)
	o.x.logger.Debug("scope not read completely; its rows are kept", "instance", o.x.site.Name, "entity", o.name,
		"scope", scope, "error", err.Error())
}

func (o *entityOut) isFatal() bool {
	if o == nil {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.fatalErr != nil
}

// abort discards everything the entity wrote (raw keeps its last state);
// with report, err is the entity's failure in the returned error. It says
// whether the entity was still open.
func (o *entityOut) abort(err error, report bool) bool {
	if o == nil {
		return false
	}
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	o.closed = true
	if o.fatalErr == nil {
		o.fatalErr = err
	}
	o.mu.Unlock()
	o.w.Abort()
	if report {
		o.x.fail(fmt.Errorf("%s: %w", o.name, err))
	}
	return true
}

// commit lands the entity in the background; Extract waits for it.
func (o *entityOut) commit(ctx context.Context) {
	if o == nil {
		return
	}
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	o.closed = true
	o.mu.Unlock()
	o.x.commits.Add(1)
	go func() {
		defer o.x.commits.Done()
		if _, err := o.w.Commit(ctx); err != nil {
			o.x.fail(fmt.Errorf("%s: %w", o.name, err))
		}
	}()
}
