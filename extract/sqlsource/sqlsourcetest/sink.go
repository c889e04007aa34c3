// Package sqlsourcetest provides an in-memory extract.Sink for tests of
// sources: it keeps what each entity wrote, its bad rows and how it ended,
// so a test can check a source against the contract without the raw loader.
package sqlsourcetest

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"sync"

	"github.com/mimwarehouse/mim/extract"
)

// Sink records everything written to it. The zero value is ready to use.
type Sink struct {
	mu       sync.Mutex
	entities map[string]*Entity
	order    []string
}

// Entity is what one entity writer received.
type Entity struct {
	ID        extract.EntityID
	Records   []extract.Record
	RowErrors []RowError
	Complete  []string         // scopes declared complete
	Failed    map[string]error // scopes declared failed
	Committed bool
	Aborted   bool // Abort called before any Commit
	mu        sync.Mutex
}

// RowError is one RowError call.
type RowError struct {
	Key string
	Err error
}

// Entity opens a writer; opening the same entity twice replaces the first.
func (s *Sink) Entity(_ context.Context, id extract.EntityID) (extract.EntityWriter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entities == nil {
		s.entities = map[string]*Entity{}
	}
	e := &Entity{ID: id, Failed: map[string]error{}}
	if _, seen := s.entities[id.Entity]; !seen {
		s.order = append(s.order, id.Entity)
	}
	s.entities[id.Entity] = e
	return &writer{e: e}, nil
}

// Get returns what entity name received, or nil if it was never opened.
func (s *Sink) Get(name string) *Entity {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entities[name]
}

// Names lists the entities opened, in order.
func (s *Sink) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.order...)
}

// Payloads returns the committed payloads by key, decoded with numbers kept
// as json.Number.
func (e *Entity) Payloads() map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, r := range e.Records {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(r.Payload))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			m = map[string]any{"_invalid_json": err.Error()}
		}
		out[r.Key] = m
	}
	return out
}

// Keys returns the written keys, sorted.
func (e *Entity) Keys() []string {
	var keys []string
	for _, r := range e.Records {
		keys = append(keys, r.Key)
	}
	sort.Strings(keys)
	return keys
}

type writer struct {
	e    *Entity
	done bool
}

func (w *writer) Write(_ context.Context, r extract.Record) error {
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	w.e.Records = append(w.e.Records, r)
	return nil
}

func (w *writer) ScopeComplete(scope string) {
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	w.e.Complete = append(w.e.Complete, scope)
}

func (w *writer) ScopeFailed(scope string, err error) {
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	w.e.Failed[scope] = err
}

func (w *writer) RowError(key string, err error) {
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	w.e.RowErrors = append(w.e.RowErrors, RowError{Key: key, Err: err})
}

func (w *writer) Commit(context.Context) (extract.Result, error) {
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	w.done = true
	w.e.Committed = true
	return extract.Result{In: int64(len(w.e.Records)), New: int64(len(w.e.Records))}, nil
}

func (w *writer) Abort() {
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	if !w.done {
		w.e.Aborted = true
		w.e.Records = nil
	}
	w.done = true
}

// Progress records what a source reported. The zero value is ready to use.
type Progress struct {
	mu       sync.Mutex
	expected map[string]int64
	done     map[string]int64
}

// Expect implements extract.Progress.
func (p *Progress) Expect(entity string, units int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.expected == nil {
		p.expected = map[string]int64{}
	}
	p.expected[entity] = units
}

// Done implements extract.Progress.
func (p *Progress) Done(entity string, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		p.done = map[string]int64{}
	}
	p.done[entity] += n
}

// Get returns the expected and done units of entity.
func (p *Progress) Get(entity string) (expected, done int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.expected[entity], p.done[entity]
}
