package groupsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/mimwarehouse/mim/internal/envguard"
	"github.com/mimwarehouse/mim/moodle"
)

// BatchSize is the number of items per write request group sync asks the
// client for (moodle.WithBatchSize): small, so a bad item costs few
// requests to isolate.
const BatchSize = 25

// recordEvery bounds the items sent between two records, so an apply
// interrupted mid-phase has recorded all but the last few hundred items.
const recordEvery = 500

// Outcome is what became of one planned write.
type Outcome string

// Outcomes of a planned write.
const (
	// Applied: Moodle answered, the answer was decoded and checked, and
	// no exception was in it.
	Applied Outcome = "applied"
	// Failed: Moodle refused the item, or its answer could not be trusted.
	Failed Outcome = "failed"
	// NotAttempted: never sent, because what it depends on failed (a group
	// not created, a name not freed) or an earlier failure stopped the
	// batch (a bad token, an unreachable site).
	NotAttempted Outcome = "not_attempted"
	// Void: Moodle answered without an error, but re-reading the course
	// afterwards does not show the change (see checkApplied).
	Void Outcome = "void"
)

// Action is a planned write and what became of it.
type Action struct {
	Op
	Outcome Outcome
	Error   string          // Moodle's error, or why it was not sent
	Answer  json.RawMessage // Moodle's answer for a created group or grouping
	Retry   bool            // sent again because the first write did not take
}

// Result is what an apply did, item by item, in the order items were sent.
type Result struct {
	Instance string
	// Actions are the planned writes; those Moodle answered but a re-read
	// did not show are Void, and were sent once more: Retries.
	Actions []Action
	Retries []Action
	// Unverified counts writes whose course could not be re-read.
	Unverified int
	Requests   int // write requests made, the bisection of failed batches and retries included
}

// all are the actions and the retries.
func (r *Result) all() []Action { return append(slices.Clip(r.Actions), r.Retries...) }

// Count returns how many actions and retries of kind ended with outcome.
func (r *Result) Count(kind Kind, outcome Outcome) int {
	n := 0
	for _, a := range r.all() {
		if a.Kind == kind && a.Outcome == outcome {
			n++
		}
	}
	return n
}

// Total returns how many actions and retries ended with outcome: with
// Applied, how many planned writes took, whether at once or when retried.
func (r *Result) Total(outcome Outcome) int {
	n := 0
	for _, a := range r.all() {
		if a.Outcome == outcome {
			n++
		}
	}
	return n
}

// countOutcome counts the actions with outcome o.
func countOutcome(acts []Action, o Outcome) int {
	n := 0
	for _, a := range acts {
		if a.Outcome == o {
			n++
		}
	}
	return n
}

// VoidRetries counts the writes that did not take even when sent again.
func (r *Result) VoidRetries() int {
	n := 0
	for _, a := range r.Retries {
		if a.Outcome == Void {
			n++
		}
	}
	return n
}

// Recorder stores actions as they are done, before the next are sent. An
// error stops the apply: nothing is written to Moodle that is not recorded.
type Recorder func(ctx context.Context, actions []Action) error

// phase is one step of an apply: a kind of op, deferred or not.
type phase struct {
	kind     Kind
	deferred bool
}

// phases is the apply order: create groups, create groupings, assign, add
// members, remove members, unassign, delete; then what waited for a
// deletion to free its name.
var phases = []phase{
	{CreateGroup, false}, {CreateGrouping, false}, {Assign, false}, {AddMember, false},
	{RemoveMember, false}, {Unassign, false}, {DeleteGrouping, false}, {DeleteGroup, false},
	{CreateGroup, true}, {CreateGrouping, true}, {Assign, true}, {AddMember, true},
}

type objKey struct {
	course   int64
	idnumber string
}

// applier carries what one apply learnt: the ids of created objects and
// which deletions went through.
type applier struct {
	c        *moodle.Client
	parallel int
	record   Recorder

	mu              sync.Mutex // guards what the parallel sends learn
	groupID         map[objKey]int64
	groupingID      map[objKey]int64
	deletedGroup    map[int64]bool
	deletedGrouping map[int64]bool
	res             *Result
}

// ApplyOptions tune an apply.
type ApplyOptions struct {
	// Record (may be nil) gets the actions as they are done.
	Record Recorder
	// Parallel is how many batches of one phase are in flight at once
	// (default 1); the client's concurrency cap still bounds requests.
	// Ops of one phase never depend on each other, so order within a
	// phase does not matter.
	Parallel int
	// PageSize is the enrolled users per request when the courses written
	// to are re-read (0: a course's users in one request).
	PageSize int
	// Prefix is the site's group prefix (the plan's), for the re-read.
	Prefix string
}

// Apply sends plan to the site through c, which must be the client the
// permit was given for (envguard.Guard.WebServices): without a permit for
// exactly this site nothing is sent. Items go in small batches that the
// client bisects on failure, so a bad item fails alone; each answer is
// decoded and checked, and an id of 0 or a missing id is a failure whose
// id is never used. Ops depending on a failed one are not attempted. The
// error is a *PartialError when some items failed or were not attempted,
// and the Result says which; other errors stop the apply (the Result says
// what was done before). Then the courses written to are read again: a
// write Moodle answered but the re-read does not show is Void and is sent
// once more in batches of RetryBatch (see checkApplied).
func Apply(ctx context.Context, c *moodle.Client, permit *envguard.Permit, plan *Plan, o ApplyOptions) (*Result, error) {
	res := &Result{Instance: plan.Instance}
	switch {
	case !permit.Covers(c.Name(), c.URL()):
		return res, fmt.Errorf("applying the group plan of site %s: no environment guard permit for site %s at %s; nothing was sent",
			plan.Instance, c.Name(), c.URL())
	case plan.Instance != c.Name():
		return res, fmt.Errorf("applying the group plan of site %s through the client of site %s: refused, nothing was sent", plan.Instance, c.Name())
	}
	a := &applier{c: c, parallel: max(o.Parallel, 1), record: o.Record, groupID: map[objKey]int64{}, groupingID: map[objKey]int64{},
		deletedGroup: map[int64]bool{}, deletedGrouping: map[int64]bool{}, res: res}
	// Ops on existing objects carry their ids from the plan; the ids of
	// the objects this apply creates are learnt as they are created.
	ops := plan.Ops()
	for i, ph := range phases {
		var todo []Op
		for _, op := range ops {
			if op.Kind == ph.kind && op.Deferred == ph.deferred {
				todo = append(todo, op)
			}
		}
		if err := ctx.Err(); err != nil {
			// Interrupted: say so for everything not sent.
			var rest []Action
			for _, later := range phases[i:] {
				for _, op := range ops {
					if op.Kind == later.kind && op.Deferred == later.deferred {
						rest = append(rest, Action{Op: op, Outcome: NotAttempted, Error: "interrupted: " + err.Error()})
					}
				}
			}
			if rerr := a.done(context.WithoutCancel(ctx), rest); rerr != nil {
				return res, rerr
			}
			return res, fmt.Errorf("applying the group plan of site %s: %w", plan.Instance, err)
		}
		// Chunks of whole rounds of parallel batches, recorded one by one.
		round := BatchSize * a.parallel
		chunk := max(recordEvery/round, 1) * round
		for len(todo) > 0 {
			n := min(len(todo), chunk)
			if err := a.run(ctx, ph.kind, todo[:n]); err != nil {
				return res, err
			}
			todo = todo[n:]
		}
	}
	o.Prefix = plan.Prefix
	if err := a.checkApplied(ctx, o); err != nil {
		return res, fmt.Errorf("verifying the group changes made on site %s: %w", plan.Instance, err)
	}
	if bad := res.Total(Failed) + res.Total(NotAttempted) + len(res.Retries); bad > 0 {
		return res, &PartialError{Instance: plan.Instance, Failed: res.Total(Failed), NotAttempted: res.Total(NotAttempted),
			Void: res.VoidRetries(), Retried: countOutcome(res.Retries, Applied), Total: len(res.Actions)}
	}
	return res, nil
}

// done records actions and adds them to the result.
func (a *applier) done(ctx context.Context, acts []Action) error {
	if err := a.save(ctx, acts); err != nil {
		return err
	}
	a.res.Actions = append(a.res.Actions, acts...)
	return nil
}

// save records actions.
func (a *applier) save(ctx context.Context, acts []Action) error {
	if len(acts) == 0 || a.record == nil {
		return nil
	}
	if err := a.record(ctx, acts); err != nil {
		return fmt.Errorf("recording applied group changes (no further changes were sent): %w", err)
	}
	return nil
}

// run resolves the ids ops need, sends those it can, and records all.
func (a *applier) run(ctx context.Context, kind Kind, ops []Op) error {
	var (
		acts  []Action
		ready []Op
	)
	for _, op := range ops {
		op, why := a.resolve(op)
		if why != "" {
			acts = append(acts, Action{Op: op, Outcome: NotAttempted, Error: why})
			continue
		}
		ready = append(ready, op)
	}
	// Contiguous parts of whole batches, sent at once; each keeps its order.
	batches := (len(ready) + BatchSize - 1) / BatchSize
	parts := min(a.parallel, batches)
	sent := make([][]Action, parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for i := range parts {
		lo, hi := i*batches/parts*BatchSize, min((i+1)*batches/parts*BatchSize, len(ready))
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent[i], errs[i] = a.send(ctx, kind, ready[lo:hi])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, part := range sent {
		acts = append(acts, part...)
	}
	return a.done(ctx, acts)
}

// resolve fills in the ids an op needs, or says why it cannot be sent.
// It runs between phases, when no send is in flight.
func (a *applier) resolve(op Op) (Op, string) {
	if op.Deferred {
		switch op.Kind {
		case CreateGroup:
			if !a.deletedGroup[op.Blocker] {
				return op, fmt.Sprintf("waits for MIM group %d, which holds the name %q, to be deleted; it was not", op.Blocker, op.Group.Name)
			}
		case CreateGrouping:
			if !a.deletedGrouping[op.Blocker] {
				return op, fmt.Sprintf("waits for MIM grouping %d, which holds the name %q, to be deleted; it was not", op.Blocker, op.Grouping.Name)
			}
		}
	}
	needGroup := op.Kind == Assign || op.Kind == Unassign || op.Kind == AddMember || op.Kind == RemoveMember
	needGrouping := op.Kind == Assign || op.Kind == Unassign
	if needGroup && op.Group.ID == 0 {
		op.Group.ID = a.groupID[objKey{op.CourseID, op.Group.IDNumber}]
		if op.Group.ID == 0 {
			return op, fmt.Sprintf("group %q (%s) was not created", op.Group.Name, op.Group.IDNumber)
		}
	}
	if needGrouping && op.Grouping.ID == 0 {
		op.Grouping.ID = a.groupingID[objKey{op.CourseID, op.Grouping.IDNumber}]
		if op.Grouping.ID == 0 {
			return op, fmt.Sprintf("grouping %q (%s) was not created", op.Grouping.Name, op.Grouping.IDNumber)
		}
	}
	return op, ""
}

// lock takes the applier's lock to take in a batch's answer, counting its
// requests, and returns the unlock.
func (a *applier) lock(requests int) func() {
	a.mu.Lock()
	a.res.Requests += requests
	return a.mu.Unlock
}

// outcome turns a batch item's error into an action.
func outcome(op Op, err error) Action {
	switch {
	case err == nil:
		return Action{Op: op, Outcome: Applied}
	case errors.Is(err, moodle.ErrNotAttempted):
		return Action{Op: op, Outcome: NotAttempted, Error: err.Error()}
	}
	return Action{Op: op, Outcome: Failed, Error: err.Error()}
}

// send makes the client calls for one kind of op.
func (a *applier) send(ctx context.Context, kind Kind, ops []Op) ([]Action, error) {
	acts := make([]Action, len(ops))
	switch kind {
	case CreateGroup:
		in := make([]moodle.NewGroup, len(ops))
		for i, op := range ops {
			in[i] = moodle.NewGroup{CourseID: op.CourseID, Name: op.Group.Name, IDNumber: op.Group.IDNumber}
		}
		res, _ := a.c.CreateGroups(ctx, in)
		defer a.lock(res.Requests)()
		for i, item := range res.Items {
			acts[i] = a.created(ops[i], item.Err, int64(item.Value.ID), item.Value.IDNumber, item.Value.Raw)
		}
	case CreateGrouping:
		in := make([]moodle.NewGrouping, len(ops))
		for i, op := range ops {
			in[i] = moodle.NewGrouping{CourseID: op.CourseID, Name: op.Grouping.Name, IDNumber: op.Grouping.IDNumber}
		}
		res, _ := a.c.CreateGroupings(ctx, in)
		defer a.lock(res.Requests)()
		for i, item := range res.Items {
			acts[i] = a.created(ops[i], item.Err, int64(item.Value.ID), item.Value.IDNumber, item.Value.Raw)
		}
	case Assign, Unassign:
		in := make([]moodle.GroupingAssignment, len(ops))
		for i, op := range ops {
			in[i] = moodle.GroupingAssignment{GroupingID: op.Grouping.ID, GroupID: op.Group.ID}
		}
		call := a.c.AssignGroupings
		if kind == Unassign {
			call = a.c.UnassignGroupings
		}
		res, _ := call(ctx, in)
		defer a.lock(res.Requests)()
		for i, item := range res.Items {
			acts[i] = outcome(ops[i], item.Err)
		}
	case AddMember, RemoveMember:
		in := make([]moodle.Member, len(ops))
		for i, op := range ops {
			in[i] = moodle.Member{GroupID: op.Group.ID, UserID: op.User.UserID}
		}
		call := a.c.AddGroupMembers
		if kind == RemoveMember {
			call = a.c.DeleteGroupMembers
		}
		res, _ := call(ctx, in)
		defer a.lock(res.Requests)()
		for i, item := range res.Items {
			acts[i] = outcome(ops[i], item.Err)
		}
	case DeleteGroup, DeleteGrouping:
		ids := make([]int64, len(ops))
		for i, op := range ops {
			if kind == DeleteGroup {
				ids[i] = op.Group.ID
			} else {
				ids[i] = op.Grouping.ID
			}
		}
		call, deleted := a.c.DeleteGroups, a.deletedGroup
		if kind == DeleteGrouping {
			call, deleted = a.c.DeleteGroupings, a.deletedGrouping
		}
		res, _ := call(ctx, ids)
		defer a.lock(res.Requests)()
		for i, item := range res.Items {
			acts[i] = outcome(ops[i], item.Err)
			if item.Err == nil {
				deleted[ids[i]] = true
			}
		}
	default:
		return nil, fmt.Errorf("applying group changes: unknown kind %q", kind)
	}
	return acts, nil
}

// created checks a create's answer beyond what the client checked (a
// positive id, the course and name sent): the idnumber must be the one
// sent, or the object is not one MIM can find again. Only then is the id
// kept for the ops that depend on it.
func (a *applier) created(op Op, err error, id int64, idnumber string, raw json.RawMessage) Action {
	ref, ids := &op.Group, a.groupID
	if op.Kind == CreateGrouping {
		ref, ids = &op.Grouping, a.groupingID
	}
	if err == nil && idnumber != ref.IDNumber {
		//lint:ignore ST1005 "Moodle" is a proper noun
		err = fmt.Errorf("Moodle answered idnumber %q for the %s created as %q; its id %d is not used", idnumber, op.Kind, ref.IDNumber, id)
	}
	if err == nil {
		ref.ID = id
		ids[objKey{op.CourseID, ref.IDNumber}] = id
	}
	act := outcome(op, err)
	if err == nil {
		act.Answer = raw
	}
	return act
}
