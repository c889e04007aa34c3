package moodle

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/moodle"
)

// enrolFields are the user fields asked of core_enrol_get_enrolled_users:
// who the user is and their place in the course. The rest of the account
// is in the users entity; leaving it out keeps enrolments from changing
// whenever a user's name or last login does, and spares Moodle the
// enrolledcourses list it would otherwise build for every user. Nor is
// lastcourseaccess asked for: it changes with every visit, so in term time
// a large share of the enrolments would be rewritten (and their previous
// versions kept in the raw store's history) every night for a value no feed uses.
var enrolFields = []string{"id", "username", "idnumber", "roles", "groups"}

// maxRereads is how many times a course whose enrolments change while they
// are being paged through is read again before its scope is failed.
const maxRereads = 2

// reader is one kind of per-course read and the entities it lands: scoped
// ones get the course as scope; dependents are harvested from it (roles
// and completion from enrolments) and fail with it.
type reader struct {
	on         bool
	scoped     []*entityOut
	dependents []*entityOut

	mu      sync.Mutex
	stopErr error
}

// active reports whether courses are still read for r.
func (r *reader) active() bool {
	if r == nil || !r.on {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopErr == nil
}

// stop ends r for every course: err (a bad token, a missing function) would
// fail them all. Its entities are aborted, so raw keeps their last state.
func (r *reader) stop(err error) {
	r.mu.Lock()
	first := r.stopErr == nil
	if first {
		r.stopErr = err
	}
	r.mu.Unlock()
	if first {
		for _, o := range append(slices.Clone(r.scoped), r.dependents...) {
			o.abort(err, true)
		}
	}
}

func (r *reader) stopped() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopErr
}

// failScope declares the course's scope failed in every scoped entity.
func (r *reader) failScope(scope string, err error) {
	for _, o := range r.scoped {
		o.fail(scope, err)
	}
}

func (r *reader) completeScope(scope string) {
	for _, o := range r.scoped {
		o.complete(scope)
	}
}

// harvestedRole is a role seen in enrolments; the lowest course id it was
// seen in decides its payload, so a re-run writes the same bytes.
type harvestedRole struct {
	course  int64
	payload []byte
}

// rolePayload is a roles payload.
type rolePayload struct {
	RoleID    int64  `json:"roleid"`
	ShortName string `json:"shortname"`
	Name      string `json:"name"`
}

// courseRun is the per-course phase of one extraction.
type courseRun struct {
	x                                    *extraction
	enrol, groups, groupings, grades     *reader
	methods                              *reader
	enrolOut, groupsOut, groupingsOut    *entityOut
	methodsOut                           *entityOut
	itemsOut, gradesOut, rolesOut, compl *entityOut
	gradeCats, complCats                 map[int64]bool // nil: every category
	categoryOf                           map[int64]int64

	mu          sync.Mutex
	roles       map[int64]harvestedRole
	active      map[int64]struct{} // users actively enrolled in a course whose completion is read
	enrolFailed int                // courses whose enrolments were not read completely
	complFailed int                // of those, courses whose completion is read
}

func (r *courseRun) complIncluded(courseID, categoryID int64) bool {
	return r.compl != nil && (r.complCats == nil || r.complCats[categoryID])
}

// perCourse reads the per-course entities of every course with the site's
// concurrency, then lands roles and reads completion.
func (x *extraction) perCourse(ctx context.Context, courses []course, crsErr error, cats []category, catErr error) {
	r := &courseRun{x: x, roles: map[int64]harvestedRole{}, active: map[int64]struct{}{}}
	r.enrolOut, r.rolesOut, r.compl = x.open(ctx, entEnrolments), x.open(ctx, entRoles), x.open(ctx, entCompletion)
	r.groupsOut, r.groupingsOut = x.open(ctx, entGroups), x.open(ctx, entGroupings)
	r.itemsOut, r.gradesOut = x.open(ctx, entGradeItems), x.open(ctx, entGrades)
	r.methodsOut = x.open(ctx, entEnrolMethods)
	if r.compl != nil {
		if err := x.lacks(fnUserCourses); err != nil {
			r.compl.abort(err, true)
			r.compl = nil
		} else if len(x.site.Completion.Categories) > 0 {
			var err error
			if r.complCats, err = limit("completion", cats, catErr, x.site.Completion.Categories); err != nil {
				r.compl.abort(err, true)
				r.compl = nil
			}
		}
	}
	r.enrol = &reader{on: r.enrolOut != nil || r.rolesOut != nil || r.compl != nil,
		scoped: []*entityOut{r.enrolOut}, dependents: []*entityOut{r.rolesOut, r.compl}}
	r.groups = &reader{on: r.groupsOut != nil, scoped: []*entityOut{r.groupsOut}}
	r.groupings = &reader{on: r.groupingsOut != nil, scoped: []*entityOut{r.groupingsOut}}
	r.grades = &reader{on: r.itemsOut != nil || r.gradesOut != nil, scoped: []*entityOut{r.itemsOut, r.gradesOut}}
	r.methods = &reader{on: r.methodsOut != nil, scoped: []*entityOut{r.methodsOut}}
	readers := []*reader{r.enrol, r.groups, r.groupings, r.grades, r.methods}

	if crsErr != nil {
		err := fmt.Errorf("the course list could not be read: %w", crsErr)
		for _, rd := range readers {
			if rd.on {
				rd.stop(err)
			}
		}
		return
	}
	for _, c := range []struct {
		rd  *reader
		fns []string
	}{{r.enrol, []string{fnEnrolled}}, {r.groups, []string{fnGroups}}, {r.groupings, []string{fnGroupings, fnGroupingsByID}},
		{r.grades, []string{fnGradeItems}}, {r.methods, []string{fnEnrolMethods}}} {
		if err := x.lacks(c.fns...); err != nil && c.rd.on {
			c.rd.stop(err)
		}
	}
	if r.grades.active() && len(x.site.Grades.Categories) > 0 {
		var err error
		if r.gradeCats, err = limit("grades", cats, catErr, x.site.Grades.Categories); err != nil {
			r.grades.stop(err)
		}
	}
	r.categoryOf = make(map[int64]int64, len(courses))
	var todo []course
	gradeCourses := 0
	for _, c := range courses {
		r.categoryOf[c.id] = c.category
		if c.site {
			continue
		}
		todo = append(todo, c)
		if r.gradeCats == nil || r.gradeCats[c.category] {
			gradeCourses++
		}
	}
	x.expect(entEnrolments, len(todo))
	x.expect(entGroups, len(todo))
	x.expect(entGroupings, len(todo))
	x.expect(entGradeItems, gradeCourses)
	x.expect(entGrades, gradeCourses)
	x.expect(entEnrolMethods, len(todo))

	forEach(ctx, x.readers, x.breakerLimit(), todo, r.course, r.skip)

	if ctx.Err() != nil {
		return // Extract aborts whatever is open
	}
	r.landRoles(ctx)
	current := make(map[string]bool, len(todo))
	graded := map[string]bool{}
	for _, c := range todo {
		current[c.scope()] = true
		if r.gradeCats == nil || r.gradeCats[c.category] {
			graded[c.scope()] = true
		}
	}
	for _, o := range []*entityOut{r.enrolOut, r.groupsOut, r.groupingsOut, r.methodsOut} {
		x.closeVanished(ctx, o, current, "courses deleted from the site")
		o.commit(ctx)
	}
	for _, o := range []*entityOut{r.itemsOut, r.gradesOut} {
		x.closeVanished(ctx, o, graded, "courses deleted from the site or outside grades.categories")
		o.commit(ctx)
	}
	r.completion(ctx)
}

// breakerLimit is how many per-course (or per-user) reads may fail in a
// row before the rest are not tried: the client has already retried each,
// so a longer run of failures means the site is down, and waiting out its
// retries for every remaining course would take the night.
func (x *extraction) breakerLimit() int { return max(25, 3*x.workers) }

// course reads one course for every active reader. It returns the last
// error that failed one of its scopes (fatal errors stop their reader and
// are not counted).
func (r *courseRun) course(ctx context.Context, c course) error {
	scope := c.scope()
	var last error
	settle := func(rd *reader, entity string, err error) {
		defer r.x.done(entity, 1)
		switch {
		case err == nil:
			rd.completeScope(scope)
		case ctx.Err() != nil:
			rd.failScope(scope, fmt.Errorf("not read completely: %w", context.Cause(ctx)))
			last = err
		case fatal(err):
			rd.stop(err)
		default:
			rd.failScope(scope, err)
			last = err
		}
		if rd == r.enrol && err != nil {
			r.mu.Lock()
			r.enrolFailed++
			if r.complIncluded(c.id, c.category) {
				r.complFailed++
			}
			r.mu.Unlock()
		}
	}
	if r.enrol.active() {
		settle(r.enrol, entEnrolments, r.readEnrolments(ctx, c))
	}
	if r.groups.active() {
		settle(r.groups, entGroups, r.readGroups(ctx, c))
	}
	if r.groupings.active() {
		settle(r.groupings, entGroupings, r.readGroupings(ctx, c))
	}
	if r.grades.active() && (r.gradeCats == nil || r.gradeCats[c.category]) {
		settle(r.grades, entGradeItems, r.readGrades(ctx, c))
		r.x.done(entGrades, 1)
	}
	if r.methods.active() {
		settle(r.methods, entEnrolMethods, r.readEnrolMethods(ctx, c))
	}
	return last
}

// readEnrolMethods lands the enrolment instances the course describes
// through core_enrol_get_course_enrolment_methods, each with mim_courseid
// and mim_source "web_service": Moodle lists only enabled instances of
// plugins that describe themselves (self, guest, fee), never IMS, manual,
// cohort or flat-file ones, nor a disabled one (docs/contracts.md §1).
func (r *courseRun) readEnrolMethods(ctx context.Context, c course) error {
	ms, err := r.x.client.GetEnrolmentMethods(ctx, c.id)
	if err != nil {
		return fmt.Errorf("reading enrolment methods (%s): %w", fnEnrolMethods, err)
	}
	scope := c.scope()
	for i := range ms {
		p, err := withKeys(ms[i].Raw, kv{"mim_courseid", c.id}, kv{"mim_source", "web_service"})
		if err != nil {
			return fmt.Errorf("enrolment method %d: %w", int64(ms[i].ID), err)
		}
		if err := r.methodsOut.write(ctx, scope+":"+strconv.FormatInt(int64(ms[i].ID), 10), scope, p); err != nil {
			return err
		}
	}
	return nil
}

// skip fails the scopes of a course that was not read because too many
// reads in a row had failed (or the run was interrupted).
func (r *courseRun) skip(c course, cause error) {
	err := fmt.Errorf("not read: %w", cause)
	for _, rd := range []*reader{r.enrol, r.groups, r.groupings, r.grades, r.methods} {
		if rd.active() && (rd != r.grades || r.gradeCats == nil || r.gradeCats[c.category]) {
			rd.failScope(c.scope(), err)
		}
	}
	if r.enrol.active() {
		r.mu.Lock()
		r.enrolFailed++
		if r.complIncluded(c.id, c.category) {
			r.complFailed++
		}
		r.mu.Unlock()
	}
}

// readEnrolments reads a course's enrolled users: first the suspended ones
// (onlysuspended=1, ids only), then everyone, each landed with
// mim_courseid and mim_suspended. Their roles are harvested, and the
// active ones noted for completion.
func (r *courseRun) readEnrolments(ctx context.Context, c course) error {
	suspended := map[int64]bool{}
	err := r.x.eachEnrolled(ctx, c.id, moodle.EnrolledUsersOptions{OnlySuspended: true, UserFields: []string{"id"}},
		func(u *moodle.EnrolledUser) error {
			suspended[int64(u.ID)] = true
			return nil
		})
	if err != nil {
		return fmt.Errorf("reading suspended enrolments (%s onlysuspended=1): %w", fnEnrolled, err)
	}
	scope := c.scope()
	roles := map[int64]rolePayload{}
	var active []int64
	wantActive := r.complIncluded(c.id, c.category)
	err = r.x.eachEnrolled(ctx, c.id, moodle.EnrolledUsersOptions{UserFields: enrolFields}, func(u *moodle.EnrolledUser) error {
		uid := int64(u.ID)
		susp := suspended[uid]
		if r.enrolOut != nil {
			p, err := withKeys(u.Raw, kv{"mim_courseid", c.id}, kv{"mim_suspended", susp})
			if err != nil {
				return fmt.Errorf("user %d: %w", uid, err)
			}
			if err := r.enrolOut.write(ctx, scope+":"+strconv.FormatInt(uid, 10), scope, p); err != nil {
				return err
			}
		}
		for _, ro := range u.Roles {
			roles[int64(ro.RoleID)] = rolePayload{RoleID: int64(ro.RoleID), ShortName: ro.ShortName, Name: ro.Name}
		}
		if wantActive && !susp {
			active = append(active, uid)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading enrolments (%s): %w", fnEnrolled, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, p := range roles {
		if h, seen := r.roles[id]; seen && h.course <= c.id {
			continue
		}
		b, err := marshal(p)
		if err != nil {
			return err
		}
		r.roles[id] = harvestedRole{course: c.id, payload: b}
	}
	for _, uid := range active {
		r.active[uid] = struct{}{}
	}
	return nil
}

// eachEnrolled calls fn once for every user core_enrol_get_enrolled_users
// lists in a course, page by page. Moodle pages with an offset, so a user
// enrolled or unenrolled between two pages would shift the rest: one user
// would be read twice or, worse, skipped and later taken for unenrolled.
// Each page therefore starts with the last user of the one before; if that
// user is not there, the course is read again from the start (users read
// already are not passed to fn twice).
func (x *extraction) eachEnrolled(ctx context.Context, courseID int64, opts moodle.EnrolledUsersOptions,
	fn func(*moodle.EnrolledUser) error) error {
	seen := map[int64]struct{}{}
	once := func(u *moodle.EnrolledUser) error {
		if _, dup := seen[int64(u.ID)]; dup {
			return nil
		}
		seen[int64(u.ID)] = struct{}{}
		return fn(u)
	}
	for attempt := 0; ; attempt++ {
		shifted, err := x.pages(ctx, courseID, opts, once)
		if err != nil || !shifted {
			return err
		}
		if attempt == maxRereads {
			return fmt.Errorf("the course's enrolments changed while they were read, %d times in a row", attempt+1)
		}
	}
}

// pages reads one pass of a course's enrolled users; shifted says a page
// did not start where the one before ended.
func (x *extraction) pages(ctx context.Context, courseID int64, opts moodle.EnrolledUsersOptions,
	fn func(*moodle.EnrolledUser) error) (shifted bool, err error) {
	size := x.pageSize
	from, last := 0, int64(0)
	for {
		opts.LimitFrom, opts.LimitNumber = from, size
		page, err := x.client.GetEnrolledUsers(ctx, courseID, opts)
		if err != nil {
			return false, err
		}
		rest := page
		if from > 0 {
			if len(page) == 0 || int64(page[0].ID) != last {
				return true, nil
			}
			rest = page[1:]
		}
		for i := range rest {
			if err := fn(&rest[i]); err != nil {
				return false, err
			}
		}
		if len(page) < size {
			return false, nil
		}
		last = int64(page[len(page)-1].ID)
		from += size - 1
	}
}

// readGroups lands a course's groups. Their members are the enrolments'
// groups.
func (r *courseRun) readGroups(ctx context.Context, c course) error {
	gs, err := r.x.client.GetCourseGroups(ctx, c.id)
	if err != nil {
		return fmt.Errorf("reading groups (%s): %w", fnGroups, err)
	}
	scope := c.scope()
	for i := range gs {
		if err := r.groupsOut.write(ctx, strconv.FormatInt(int64(gs[i].ID), 10), scope, gs[i].Raw); err != nil {
			return err
		}
	}
	return nil
}

// readGroupings lands a course's groupings, each with mim_groupids: the ids
// of its groups, ascending.
func (r *courseRun) readGroupings(ctx context.Context, c course) error {
	gs, err := r.x.client.GetCourseGroupings(ctx, c.id)
	if err != nil {
		return fmt.Errorf("reading groupings (%s): %w", fnGroupings, err)
	}
	if len(gs) == 0 {
		return nil
	}
	ids := make([]int64, len(gs))
	for i := range gs {
		ids[i] = int64(gs[i].ID)
	}
	full, err := r.x.client.GetGroupings(ctx, ids, true)
	if err != nil {
		return fmt.Errorf("reading the groups of %d grouping(s) (%s): %w", len(ids), fnGroupingsByID, err)
	}
	groupIDs := make(map[int64][]int64, len(full))
	for _, g := range full {
		list := make([]int64, 0, len(g.Groups))
		for _, gr := range g.Groups {
			list = append(list, int64(gr.ID))
		}
		slices.Sort(list)
		groupIDs[int64(g.ID)] = list
	}
	scope := c.scope()
	for i := range gs {
		id := int64(gs[i].ID)
		list, ok := groupIDs[id]
		if !ok {
			return fmt.Errorf("grouping %d was listed by %s but not returned by %s: changed while read", id, fnGroupings, fnGroupingsByID)
		}
		p, err := withKeys(gs[i].Raw, kv{"mim_groupids", list})
		if err != nil {
			return fmt.Errorf("grouping %d: %w", id, err)
		}
		if err := r.groupingsOut.write(ctx, strconv.FormatInt(id, 10), scope, p); err != nil {
			return err
		}
	}
	return nil
}

// readGrades lands a course's grade items and every graded user's grades
// from one grade report (Moodle regrades the course to answer it).
func (r *courseRun) readGrades(ctx context.Context, c course) error {
	ugs, warnings, err := r.x.client.GetGradeItems(ctx, c.id, 0)
	if err != nil {
		return fmt.Errorf("reading grades (%s): %w", fnGradeItems, err)
	}
	if len(warnings) > 0 {
		msgs := make([]string, len(warnings))
		for i, w := range warnings {
			msgs[i] = w.String()
		}
		return fmt.Errorf("%s answered with warnings, so grades may be missing: %s", fnGradeItems, strings.Join(msgs, "; "))
	}
	scope := c.scope()
	items := map[int64]bool{}
	for _, ug := range ugs {
		for _, it := range ug.GradeItems {
			item, grade, err := splitGradeItem(it.Raw)
			if err != nil {
				return fmt.Errorf("grade item %d of user %d: %w", it.ID, ug.UserID, err)
			}
			key := scope + ":" + strconv.FormatInt(int64(it.ID), 10)
			// Items repeat for every user; the first user's copy is landed.
			if !items[int64(it.ID)] {
				items[int64(it.ID)] = true
				if err := r.itemsOut.write(ctx, key, scope, item); err != nil {
					return err
				}
			}
			if err := r.gradesOut.write(ctx, key+":"+strconv.FormatInt(int64(ug.UserID), 10), scope, grade); err != nil {
				return err
			}
		}
	}
	return nil
}

// landRoles writes the roles harvested from enrolments. They are complete
// only if every course's enrolments were read.
func (r *courseRun) landRoles(ctx context.Context) {
	o := r.rolesOut
	if o == nil || o.isFatal() {
		return
	}
	ids := make([]int64, 0, len(r.roles))
	for id := range r.roles {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	r.x.expect(entRoles, len(ids))
	for _, id := range ids {
		if err := o.write(ctx, strconv.FormatInt(id, 10), "", r.roles[id].payload); err != nil {
			o.abort(err, true)
			return
		}
	}
	if r.enrolFailed > 0 {
		o.fail("", fmt.Errorf("the enrolments of %d course(s) were not read completely, so a role seen only there may be missing", r.enrolFailed))
	} else {
		o.complete("")
	}
	o.commit(ctx)
	r.x.done(entRoles, len(ids))
}

// closeVanished declares complete (and so empty) the scopes o holds live
// rows in that are not in current: their course or user is gone, and its
// rows must not stay current for ever. It is skipped when the sink's writer
// cannot list its live scopes (extract.ScopeLister), and when current is
// empty (more likely a permission problem than an empty site).
func (x *extraction) closeVanished(ctx context.Context, o *entityOut, current map[string]bool, why string) {
	if o == nil || len(current) == 0 || o.isFatal() {
		return
	}
	lister, ok := o.w.(extract.ScopeLister)
	if !ok {
		return
	}
	scopes, err := lister.LiveScopes(ctx)
	if err != nil {
		x.logger.Warn("could not list raw's scopes; rows of "+why+" stay current until the next run", "instance", x.site.Name,
			"entity", o.name, "error", err.Error())
		return
	}
	n := 0
	for _, s := range scopes {
		if !current[s] {
			o.complete(s)
			n++
		}
	}
	if n > 0 {
		x.logger.Debug("scopes gone from the site are closed: their rows are marked deleted", "instance", x.site.Name,
			"entity", o.name, "scopes", n, "reason", why)
	}
}

// forEach calls fn for every item with workers goroutines. fn returns
// whether the item failed; after limit failures in a row the items not yet
// started are passed to skip instead, with the reason, and the calls in
// flight see their context cancelled with it.
func forEach[T any](ctx context.Context, workers, limit int, items []T, fn func(context.Context, T) error, skip func(T, error)) {
	cctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var streak atomic.Int64
	jobs := make(chan T)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range jobs {
				err := fn(cctx, it)
				switch {
				case err == nil:
					streak.Store(0)
				case cctx.Err() == nil:
					if streak.Add(1) >= int64(limit) {
						stop(fmt.Errorf("gave up after %d reads in a row failed, the last with: %w", limit, err))
					}
				}
			}
		}()
	}
	for i, it := range items {
		if cctx.Err() != nil {
			for _, rest := range items[i:] {
				skip(rest, context.Cause(cctx))
			}
			break
		}
		select {
		case jobs <- it:
		case <-cctx.Done():
			skip(it, context.Cause(cctx))
		}
	}
	close(jobs)
	wg.Wait()
}

// sortedIDs returns the keys of set in ascending order.
func sortedIDs(set map[int64]struct{}) []int64 {
	out := make([]int64, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	slices.SortFunc(out, cmp.Compare[int64])
	return out
}
