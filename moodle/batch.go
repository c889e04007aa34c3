package moodle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// Outcome is what became of one item of a batch write.
type Outcome[T any] struct {
	Index int   // the item's position in the input
	Value T     // what Moodle returned for it (a created object); zero for functions that return nothing
	Err   error // nil when the item was applied
}

// BatchResult reports a batch write item by item. Moodle applies each
// request as one transaction: one bad item fails the whole request and
// nothing of it is applied. The client then splits the request in halves,
// and again, until every bad item failed alone and every good one was
// applied, so Items say exactly which failed and why.
type BatchResult[T any] struct {
	Function string
	Items    []Outcome[T] // one per input item, in input order
	Requests int          // HTTP requests made, the splitting included
}

// Failed returns the items that were not applied.
func (r *BatchResult[T]) Failed() []Outcome[T] {
	var out []Outcome[T]
	for _, o := range r.Items {
		if o.Err != nil {
			out = append(out, o)
		}
	}
	return out
}

// Applied returns the values of the items that were applied, in order.
func (r *BatchResult[T]) Applied() []T {
	var out []T
	for _, o := range r.Items {
		if o.Err == nil {
			out = append(out, o.Value)
		}
	}
	return out
}

func (r *BatchResult[T]) err() error {
	failed := 0
	var first error
	for _, o := range r.Items {
		if o.Err != nil {
			failed++
			if first == nil {
				first = o.Err
			}
		}
	}
	if failed == 0 {
		return nil
	}
	return &BatchError{Function: r.Function, Failed: failed, Total: len(r.Items), First: first}
}

// batch describes one batch-writing function.
type batch[I, T any] struct {
	function string
	list     string                                // the list parameter: groups, members, groupids, ...
	encode   func(I) any                           // one item's value: Params or a scalar
	decode   func(body []byte, n int) ([]T, error) // nil for functions that answer null
	check    func(item I, value T) error           // optional: is Moodle's answer for an item sound?
	fixed    Params                                // parameters sent with every request
	describe func(item I) string                   // names an item in errors
}

// writeBatch sends items in requests of at most the batch size and the
// form-variable budget, and isolates failures by splitting. It stops at a
// failure no splitting can isolate (a bad token, a missing function, a
// site that keeps failing transiently): items not yet sent then fail with
// ErrNotAttempted. The error is nil when every item was applied, else a
// *BatchError.
func writeBatch[I, T any](ctx context.Context, c *Client, b batch[I, T], items []I) (*BatchResult[T], error) {
	res := &BatchResult[T]{Function: b.function, Items: make([]Outcome[T], len(items))}
	if len(items) == 0 {
		return res, nil
	}
	fixedVars, err := countVars("x", b.fixed)
	if err != nil {
		return res, fmt.Errorf("%s: %w", b.function, err)
	}
	budget := c.maxVars - 3 - fixedVars
	vals := make([]any, len(items))
	cost := make([]int, len(items))
	for i, it := range items {
		res.Items[i].Index = i
		vals[i] = b.encode(it)
		n, err := countVars(b.list+"[0]", vals[i])
		switch {
		case err != nil:
			res.Items[i].Err = fmt.Errorf("%s item %d: %w", b.function, i, err)
			cost[i] = -1
		case n > budget:
			res.Items[i].Err = fmt.Errorf("%s item %d needs %d form variables, more than max input vars %d allows",
				b.function, i, n, c.maxVars)
			cost[i] = -1
		default:
			cost[i] = n
		}
	}
	s := &sender[I, T]{c: c, b: b, vals: vals, items: items, res: res}
	var chunk []int
	used := 0
	for i := range items {
		if cost[i] < 0 {
			continue
		}
		if len(chunk) == c.batchSize || used+cost[i] > budget {
			s.send(ctx, chunk)
			chunk, used = nil, 0
		}
		if s.stop != nil {
			res.Items[i].Err = fmt.Errorf("%s item %d: %w: %w", b.function, i, ErrNotAttempted, s.stop)
			continue
		}
		chunk = append(chunk, i)
		used += cost[i]
	}
	s.send(ctx, chunk)
	return res, res.err()
}

type sender[I, T any] struct {
	c     *Client
	b     batch[I, T]
	vals  []any
	items []I
	res   *BatchResult[T]
	stop  error
}

func (s *sender[I, T]) name(i int) string {
	if s.b.describe != nil {
		return fmt.Sprintf("item %d (%s)", i, s.b.describe(s.items[i]))
	}
	return "item " + strconv.Itoa(i)
}

// send sends the items idx as one request and splits it on an item error.
func (s *sender[I, T]) send(ctx context.Context, idx []int) {
	if len(idx) == 0 {
		return
	}
	if s.stop != nil {
		for _, i := range idx {
			s.res.Items[i].Err = fmt.Errorf("%s %s: %w: %w", s.b.function, s.name(i), ErrNotAttempted, s.stop)
		}
		return
	}
	f := newForm(s.c.token, s.b.function)
	if err := f.params(s.b.fixed); err != nil {
		s.fail(idx, err)
		return
	}
	for j, i := range idx {
		if err := f.param(s.b.list+"["+strconv.Itoa(j)+"]", s.vals[i]); err != nil {
			s.fail(idx, err)
			return
		}
	}
	s.res.Requests++
	body, err := s.c.do(ctx, s.b.function, f, isRetryable(s.b.function))
	if err == nil {
		s.accept(idx, body)
		return
	}
	var me *Error
	if errors.As(err, &me) && !me.Kind.fatal() && ctx.Err() == nil {
		if len(idx) == 1 {
			s.res.Items[idx[0]].Err = fmt.Errorf("%s: %w", s.name(idx[0]), err)
			return
		}
		mid := len(idx) / 2
		s.send(ctx, idx[:mid])
		s.send(ctx, idx[mid:])
		return
	}
	// Splitting cannot help: every request would fail alike.
	for _, i := range idx {
		s.res.Items[i].Err = fmt.Errorf("%s: %w", s.name(i), err)
	}
	s.stop = err
}

func (s *sender[I, T]) fail(idx []int, err error) {
	for _, i := range idx {
		s.res.Items[i].Err = fmt.Errorf("%s %s: %w", s.b.function, s.name(i), err)
	}
}

// accept records a successful request's answer item by item.
func (s *sender[I, T]) accept(idx []int, body []byte) {
	if s.b.decode == nil {
		if string(body) != "null" && string(body) != "[]" && string(body) != "{}" {
			// A function documented to return nothing returned something:
			// the items were applied, but say what came back.
			s.c.log.Debug("unexpected answer to a function that returns nothing",
				"instance", s.c.name, "function", s.b.function, "bytes", len(body))
		}
		return
	}
	out, err := s.b.decode(body, len(idx))
	if err == nil && len(out) != len(idx) {
		//lint:ignore ST1005 "Moodle" is a proper noun
		err = fmt.Errorf("Moodle answered %d items for %d sent", len(out), len(idx))
	}
	if err != nil {
		// Moodle committed the request; its answer cannot be matched to
		// the items, so none of them can be trusted as created.
		s.fail(idx, fmt.Errorf("applied, but the answer cannot be read: %w", err))
		return
	}
	for j, i := range idx {
		s.res.Items[i].Value = out[j]
		if s.b.check != nil {
			if err := s.b.check(s.items[i], out[j]); err != nil {
				s.res.Items[i].Err = fmt.Errorf("%s %s: %w", s.b.function, s.name(i), err)
			}
		}
	}
}

// decodeList decodes a JSON list answer.
func decodeList[T any](function string) func(body []byte, n int) ([]T, error) {
	return func(body []byte, _ int) ([]T, error) {
		var out []T
		if err := json.Unmarshal(body, &out); err != nil {
			return nil, fmt.Errorf("decoding the answer of %s: %w", function, err)
		}
		return out, nil
	}
}

// splitRead calls function once per chunk of values, every chunk within
// the form-variable budget, the chunks concurrently within the client's
// cap, and hands each answer to handle in chunk order.
func splitRead[V any](ctx context.Context, c *Client, function string, fixed Params, list string, values []V,
	handle func(body []byte) error) error {
	if len(values) == 0 {
		return nil
	}
	fixedVars, err := countVars("x", fixed)
	if err != nil {
		return fmt.Errorf("calling %s: %w", function, err)
	}
	per := c.maxVars - 3 - fixedVars
	if per < 1 {
		return fmt.Errorf("calling %s: max input vars %d leaves no room for %s", function, c.maxVars, list)
	}
	var chunks [][]V
	for len(values) > 0 {
		n := min(per, len(values))
		chunks = append(chunks, values[:n])
		values = values[n:]
	}
	bodies := make([][]byte, len(chunks))
	var (
		errOnce  sync.Once
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	slots := make(chan struct{}, c.concurrency)
	for i, chunk := range chunks {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			f := newForm(c.token, function)
			err := f.params(fixed)
			if err == nil {
				err = f.param(list, chunk)
			}
			if err == nil {
				bodies[i], err = c.do(ctx, function, f, true)
			}
			if err != nil {
				// The first failure cancels the other chunks; their
				// cancellations are not the error to report.
				errOnce.Do(func() { firstErr = err })
				cancel()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	for i := range chunks {
		if err := handle(bodies[i]); err != nil {
			return err
		}
	}
	return nil
}
