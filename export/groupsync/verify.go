package groupsync

import (
	"context"
	"fmt"
	"slices"
)

// A write Moodle answers without an error has not always happened: PHP
// drops the variables of a request beyond max_input_vars without a word,
// and core_group_add_group_members, which answers null, then "succeeds"
// with the tail of its members missing (a real Moodle 4.5 did so). So an
// apply re-reads the courses it wrote to, marks every write the re-read
// does not show as Void, sends those once more in small batches, and
// re-reads again.

// RetryBatch is the number of items per request when writes that did not
// take are sent again: small enough for any max_input_vars a site could
// run with (5 members are 13 form variables).
const RetryBatch = 5

// voidReason says why a write is Void.
const voidReason = "Moodle answered without an error, but re-reading the course shows the change is not there " +
	"(a request cut short by PHP's max_input_vars?)"

// took reports whether st, a course as re-read after the apply, shows the
// change a, which Moodle answered without an error, made.
func took(a Action, st *CourseState) bool {
	group := func(id int64) *Group {
		for i := range st.Groups {
			if st.Groups[i].ID == id {
				return &st.Groups[i]
			}
		}
		return nil
	}
	grouping := func(id int64) *Grouping {
		for i := range st.Groupings {
			if st.Groupings[i].ID == id {
				return &st.Groupings[i]
			}
		}
		return nil
	}
	switch a.Kind {
	case CreateGroup:
		g := group(a.Group.ID)
		return g != nil && g.IDNumber == a.Group.IDNumber
	case CreateGrouping:
		g := grouping(a.Grouping.ID)
		return g != nil && g.IDNumber == a.Grouping.IDNumber
	case DeleteGroup:
		return group(a.Group.ID) == nil
	case DeleteGrouping:
		return grouping(a.Grouping.ID) == nil
	case AddMember:
		g := group(a.Group.ID)
		return g != nil && slices.Contains(g.Members, a.User.UserID)
	case RemoveMember:
		g := group(a.Group.ID)
		return g == nil || !slices.Contains(g.Members, a.User.UserID)
	case Assign:
		g := grouping(a.Grouping.ID)
		return g != nil && slices.Contains(g.GroupIDs, a.Group.ID)
	case Unassign:
		g := grouping(a.Grouping.ID)
		return g == nil || !slices.Contains(g.GroupIDs, a.Group.ID)
	}
	return true
}

// verify re-reads the courses acts applied writes to and marks those the
// re-read does not show Void. A course that cannot be re-read leaves its
// writes as they are, counted in Unverified.
func (a *applier) verify(ctx context.Context, acts []Action, o ApplyOptions) (void []int, err error) {
	var courses []int64
	for _, act := range acts {
		if act.Outcome == Applied && !slices.Contains(courses, act.CourseID) {
			courses = append(courses, act.CourseID)
		}
	}
	if len(courses) == 0 {
		return nil, nil
	}
	st := ReadActual(ctx, a.c, courses, ReadOptions{Prefix: o.Prefix, Concurrency: a.parallel, PageSize: o.PageSize})
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("re-reading the courses written to: %w", err)
	}
	for i, act := range acts {
		if act.Outcome != Applied {
			continue
		}
		cs := st.Courses[act.CourseID]
		if cs == nil {
			a.res.Unverified++
			continue
		}
		if !took(act, cs) {
			void = append(void, i)
		}
	}
	return void, nil
}

// checkApplied verifies what the apply wrote and sends once more, in
// batches of RetryBatch, every write that did not take; the retries are
// verified in turn. Void writes and retries are recorded as they are found.
func (a *applier) checkApplied(ctx context.Context, o ApplyOptions) error {
	void, err := a.verify(ctx, a.res.Actions, o)
	if err != nil || len(void) == 0 {
		return err
	}
	marks := make([]Action, len(void))
	for i, idx := range void {
		act := &a.res.Actions[idx]
		act.Outcome, act.Error = Void, voidReason+"; sent again"
		marks[i] = *act
	}
	if err := a.save(ctx, marks); err != nil {
		return err
	}
	// The same ops again, phase by phase, in small batches.
	var retries []Action
	for _, ph := range phases {
		var todo []Op
		for _, m := range marks {
			if m.Kind == ph.kind && m.Deferred == ph.deferred {
				todo = append(todo, m.Op)
			}
		}
		for len(todo) > 0 {
			n := min(len(todo), RetryBatch)
			acts, err := a.send(ctx, ph.kind, todo[:n])
			if err != nil {
				return err
			}
			retries = append(retries, acts...)
			todo = todo[n:]
		}
	}
	for i := range retries {
		retries[i].Retry = true
	}
	still, err := a.verify(ctx, retries, o)
	if err != nil {
		return err
	}
	for _, idx := range still {
		retries[idx].Outcome = Void
		retries[idx].Error = fmt.Sprintf("%s, even when sent again in a batch of at most %d", voidReason, RetryBatch)
	}
	if err := a.save(ctx, retries); err != nil {
		return err
	}
	a.res.Retries = append(a.res.Retries, retries...)
	return nil
}
