package moodle

import (
	"context"
	"fmt"
	"strconv"
)

// completion lands, for every user actively enrolled in a course whose
// completion is extracted, their completion of those courses
// (core_enrol_get_users_courses), each user a scope.
func (r *courseRun) completion(ctx context.Context) {
	o := r.compl
	if o == nil || o.isFatal() || r.enrol.stopped() != nil {
		return
	}
	users := sortedIDs(r.active)
	r.active = nil
	r.x.expect(entCompletion, len(users))
	read := func(ctx context.Context, uid int64) error {
		defer r.x.done(entCompletion, 1)
		scope := strconv.FormatInt(uid, 10)
		err := r.readCompletion(ctx, uid, scope)
		switch {
		case err == nil:
			o.complete(scope)
			return nil
		case ctx.Err() != nil:
			o.fail(scope, fmt.Errorf("not read completely: %w", context.Cause(ctx)))
		case fatal(err):
			o.abort(err, true)
			return nil
		default:
			o.fail(scope, err)
		}
		return err
	}
	skip := func(uid int64, cause error) {
		o.fail(strconv.FormatInt(uid, 10), fmt.Errorf("not read: %w", cause))
	}
	forEach(ctx, r.x.readers, r.x.breakerLimit(), users, read, skip)
	if ctx.Err() != nil || o.isFatal() {
		return
	}
	// A user with completion rows who is no longer actively enrolled in
	// any of these courses has none now, but only if every such course's
	// enrolments were read can that be told.
	if r.complFailed == 0 {
		current := make(map[string]bool, len(users))
		for _, uid := range users {
			current[strconv.FormatInt(uid, 10)] = true
		}
		r.x.closeVanished(ctx, o, current, "users no longer enrolled in these courses")
	}
	o.commit(ctx)
}

// readCompletion lands one user's entries for the courses whose completion
// is extracted.
func (r *courseRun) readCompletion(ctx context.Context, uid int64, scope string) error {
	ucs, err := r.x.client.GetUserCourses(ctx, uid)
	if err != nil {
		return fmt.Errorf("reading the courses of user %d (%s): %w", uid, fnUserCourses, err)
	}
	for i := range ucs {
		uc := &ucs[i]
		cid := int64(uc.ID)
		cat, known := r.categoryOf[cid]
		if !known {
			cat = int64(uc.Category) // created after the course list was read
		}
		if cid == 0 || (r.x.info != nil && cid == int64(r.x.info.SiteID)) || !r.complIncluded(cid, cat) {
			continue
		}
		if err := r.compl.write(ctx, scope+":"+strconv.FormatInt(cid, 10), scope, uc.Raw); err != nil {
			return err
		}
	}
	return nil
}
