package moodle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/moodle"
)

// The raw entities, in the order they are extracted (docs/contracts.md §1).
const (
	entSiteInfo      = "site_info"
	entCategories    = "categories"
	entCourses       = "courses"
	entUsers         = "users"
	entProfileFields = "profile_fields"
	entEnrolments    = "enrolments"
	entRoles         = "roles"
	entGroups        = "groups"
	entGroupings     = "groupings"
	entGradeItems    = "grade_items"
	entGrades        = "grades"
	entCompletion    = "completion"
	entEnrolMethods  = "enrol_methods"
)

var rawOrder = []string{entSiteInfo, entCategories, entCourses, entUsers, entProfileFields, entEnrolments, entRoles,
	entGroups, entGroupings, entGradeItems, entGrades, entCompletion, entEnrolMethods}

// RawEntities lists every raw entity a site can land, in extraction order.
func RawEntities() []string { return slices.Clone(rawOrder) }

// rawEntities maps a configured entity name (EntityNames) to the
// raw entities it lands: one grade report read gives grade items and grades.
func rawEntities(name string) []string {
	if name == "grades" {
		return []string{entGradeItems, entGrades}
	}
	return []string{name}
}

// Source extracts one configured Moodle site; it implements extract.Source.
// It calls nothing until Extract.
type Source struct {
	client   *moodle.Client
	site     *Site
	land     map[string]bool // raw entities to land
	progress extract.Progress
	db       warehouse.Querier
	logger   *slog.Logger
	workers  int // the site's concurrency: requests in flight at once
	readers  int // goroutines reading courses (or users) side by side
	pageSize int
	now      func() time.Time // a database read's clock (WithClock)
}

var _ extract.Source = (*Source)(nil)

// Option configures a Source.
type Option func(*Source)

// WithWarehouse lets the source record the site's fingerprint in
// ctl.moodle_site. Without it the source only writes records. Which scopes
// raw holds (so that the rows of a course deleted from Moodle, or of a user
// no longer enrolled anywhere, are marked deleted too) it asks the sink's
// writers (extract.ScopeLister), and the run it records under the sink
// (extract.RunIdentifier).
func WithWarehouse(db warehouse.Querier) Option { return func(s *Source) { s.db = db } }

// WithLogger sets the logger (default: discard). The source logs a site
// whose live siteurl is not the configured one (at warn) and each failed
// scope (at debug); failures are reported in the returned error and the
// ledger, not logged.
func WithLogger(l *slog.Logger) Option { return func(s *Source) { s.logger = l } }

// New builds the source of site, read through client (whose rate limit and
// concurrency cap apply to every request). opts.Entities, when given, are
// configured entity names (EntityNames) and override the site's
// list; grades and completion must still be enabled for the site, since
// they are heavy on Moodle. An entity the site cannot give is a
// *SelectionError.
func New(client *moodle.Client, site *Site, opts extract.Options, options ...Option) (*Source, error) {
	if client == nil || site == nil {
		return nil, errors.New("extract/moodle: New needs a client and a site")
	}
	land, err := selection(site, opts)
	if err != nil {
		return nil, err
	}
	s := &Source{client: client, site: site, land: land, progress: opts.Progress,
		workers: max(site.Concurrency, 1), pageSize: max(site.PageSize, 2)}
	// The client lets only workers requests be in flight at once; twice as
	// many readers keep it at that number while some of them decode and
	// land what they were sent, instead of leaving the site a request short.
	s.readers = 2 * s.workers
	for _, o := range options {
		o(s)
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// selection is the set of raw entities a read of site lands: the site's
// configured entities, or opts.Entities (configured names,
// EntityNames) when given; grades and completion must still be
// enabled for the site, since they are heavy on Moodle. An entity the site
// cannot give is a *SelectionError.
func selection(site *Site, opts extract.Options) (map[string]bool, error) {
	enabled := slices.Clone(site.Entities)
	if len(enabled) == 0 {
		enabled = slices.Clone(DefaultEntityNames)
	}
	if site.Grades.Enabled && !slices.Contains(enabled, "grades") {
		enabled = append(enabled, "grades")
	}
	if site.Completion.Enabled && !slices.Contains(enabled, "completion") {
		enabled = append(enabled, "completion")
	}
	asked := enabled
	if len(opts.Entities) > 0 {
		asked = opts.Entities
		for _, n := range asked {
			if !slices.Contains(EntityNames, n) {
				return nil, &SelectionError{Msg: fmt.Sprintf("no Moodle entity %q (known: %s)", n,
					strings.Join(EntityNames, ", "))}
			}
			if (n == "grades" || n == "completion") && !slices.Contains(enabled, n) {
				return nil, &SelectionError{Msg: fmt.Sprintf("%s is off for this site because it is heavy on Moodle; "+
					"enable it with %s: {enabled: true} in the site's configuration", n, n)}
			}
		}
	}
	land := map[string]bool{}
	for _, n := range asked {
		for _, r := range rawEntities(n) {
			land[r] = true
		}
	}
	return land, nil
}

// Name is how the operator selects the source: "moodle:" and the site's name.
func (s *Source) Name() string { return "moodle:" + s.site.Name }

// Entities lists the raw entities the source will land, in extraction order.
func (s *Source) Entities() []string {
	var out []string
	for _, e := range rawOrder {
		if s.land[e] {
			out = append(out, e)
		}
	}
	return out
}

// Functions returns the web-service functions extracting site's configured
// entities calls (the optional ones when enabled), site info included, so
// that `mim check` and ctl.moodle_site can say which the token's service
// lacks.
func Functions(site *Site) []string {
	ents := slices.Clone(site.Entities)
	if len(ents) == 0 {
		ents = slices.Clone(DefaultEntityNames)
	}
	if site.Grades.Enabled {
		ents = append(ents, "grades")
	}
	if site.Completion.Enabled {
		ents = append(ents, "completion")
	}
	need := []string{fnSiteInfo}
	add := func(fns ...string) {
		for _, f := range fns {
			if !slices.Contains(need, f) {
				need = append(need, f)
			}
		}
	}
	for _, e := range ents {
		switch e {
		case "categories":
			add(fnCategories)
		case "courses":
			add(fnCourses)
		case "users", "profile_fields":
			add(fnUsers)
		case "enrolments", "roles":
			add(fnCourses, fnEnrolled)
		case "groups":
			add(fnCourses, fnGroups)
		case "groupings":
			add(fnCourses, fnGroupings, fnGroupingsByID)
		case "enrol_methods":
			add(fnCourses, fnEnrolMethods)
		case "grades":
			add(fnCourses, fnGradeItems)
			if len(site.Grades.Categories) > 0 {
				add(fnCategories)
			}
		case "completion":
			add(fnCourses, fnEnrolled, fnUserCourses)
			if len(site.Completion.Categories) > 0 {
				add(fnCategories)
			}
		}
	}
	return need
}

// The functions the extraction calls.
const (
	fnSiteInfo      = "core_webservice_get_site_info"
	fnCategories    = "core_course_get_categories"
	fnCourses       = "core_course_get_courses"
	fnUsers         = "core_user_get_users"
	fnEnrolled      = "core_enrol_get_enrolled_users"
	fnGroups        = "core_group_get_course_groups"
	fnGroupings     = "core_group_get_course_groupings"
	fnGroupingsByID = "core_group_get_groupings"
	fnGradeItems    = "gradereport_user_get_grade_items"
	fnUserCourses   = "core_enrol_get_users_courses"
	fnEnrolMethods  = "core_enrol_get_course_enrolment_methods"
)

// Extract reads the site and streams its entities to sink. Site info comes
// first (a site that cannot say who it is is not read further); then
// categories and courses; then users alongside the per-course reads
// (enrolments, groups, groupings, grades), which run with the site's
// concurrency; then roles, harvested from the enrolments, and completion
// per user. Each entity commits as soon as it is complete. An entity that
// cannot be read at all is aborted and named in the returned error; a
// course (or user) whose read fails is a failed scope and keeps its rows.
func (s *Source) Extract(ctx context.Context, sink extract.Sink) error {
	x := &extraction{Source: s, sink: sink, out: map[string]*entityOut{}}
	x.run(ctx)
	return x.finish(ctx, s.Name())
}

// finish waits for the entities' commits, aborts what is still open, and
// returns the extraction's error, naming the source as what.
func (x *extraction) finish(ctx context.Context, what string) error {
	x.commits.Wait()
	// Every path commits or aborts its entities; what is still open here
	// was cut short, and must not stay half-written.
	cause := errors.New("the extraction ended before this entity was complete")
	if ctx.Err() != nil {
		cause = fmt.Errorf("interrupted: %w", ctx.Err())
	}
	x.abortOpen(cause)
	if len(x.errs) == 0 {
		return nil
	}
	return fmt.Errorf("extracting %s: %w", what, errors.Join(x.errs...))
}

// extraction is one run of Extract.
type extraction struct {
	*Source
	sink    extract.Sink
	info    *moodle.SiteInfo
	mu      sync.Mutex
	out     map[string]*entityOut
	errs    []error
	commits sync.WaitGroup
}

// fail records an error for the returned one.
func (x *extraction) fail(err error) {
	x.mu.Lock()
	x.errs = append(x.errs, err)
	x.mu.Unlock()
}

func (x *extraction) expect(entity string, n int) {
	if x.progress != nil && x.land[entity] {
		x.progress.Expect(entity, int64(n))
	}
}

func (x *extraction) done(entity string, n int) {
	if x.progress != nil && x.land[entity] && n > 0 {
		x.progress.Done(entity, int64(n))
	}
}

// lacks says why fn cannot be called, when the token's service (as site
// info lists it) does not include it. A site that lists no functions at
// all is given the benefit of the doubt.
func (x *extraction) lacks(fns ...string) error {
	if x.info == nil || len(x.info.Functions) == 0 {
		return nil
	}
	if missing := x.info.Missing(fns...); len(missing) > 0 {
		return fmt.Errorf("the token's service lacks %s (add it to the site's external service)", strings.Join(missing, ", "))
	}
	return nil
}

func (x *extraction) run(ctx context.Context) {
	if !x.siteInfo(ctx) {
		return
	}
	needPerCourse := x.land[entEnrolments] || x.land[entRoles] || x.land[entGroups] || x.land[entGroupings] ||
		x.land[entGradeItems] || x.land[entGrades] || x.land[entCompletion]
	needCategories := x.land[entCategories] ||
		(x.land[entGrades] || x.land[entGradeItems]) && len(x.site.Grades.Categories) > 0 ||
		x.land[entCompletion] && len(x.site.Completion.Categories) > 0

	var (
		wg      sync.WaitGroup
		cats    []category
		catErr  error
		courses []course
		crsErr  error
	)
	if needCategories {
		wg.Add(1)
		go func() { defer wg.Done(); cats, catErr = x.readCategories(ctx) }()
	}
	if x.land[entCourses] || needPerCourse {
		wg.Add(1)
		go func() { defer wg.Done(); courses, crsErr = x.readCourses(ctx) }()
	}
	wg.Wait()

	if x.land[entUsers] || x.land[entProfileFields] {
		wg.Add(1)
		go func() { defer wg.Done(); x.readUsers(ctx) }()
	}
	if needPerCourse {
		x.perCourse(ctx, courses, crsErr, cats, catErr)
	}
	wg.Wait()
}

// abortOpen aborts every entity not yet committed or aborted, reporting err
// as its failure.
func (x *extraction) abortOpen(err error) {
	x.mu.Lock()
	outs := make([]*entityOut, 0, len(x.out))
	for _, o := range x.out {
		outs = append(outs, o)
	}
	x.mu.Unlock()
	for _, o := range outs {
		o.abort(err, true)
	}
}
