// Package coursemap changes the mappings of one Moodle course on behalf of
// its staff (the LTI tool) under the same guards as every other change:
// each change is previewed by building the course's part of the marts as
// they would be after it (the night's own SQL, scoped to the course,
// inside a transaction that is rolled back) and asking the export what it
// would then send, and it is applied with that preview in one transaction,
// unless the mappings are frozen or the change alone would stop the site's
// export.
package coursemap

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/internal/mapping"
	"github.com/mimwarehouse/mim/transform"
)

// The marts a preview builds for the course.
const (
	targetMart = "mart.exp_ims_membership"
	peopleMart = "mart.fct_enrolment_target"
	groupMart  = "mart.exp_group_target"
)

// scopeTable holds the course's mappings as the change leaves them.
const scopeTable = "pg_temp.mim_scope_course_mapping"

// ExportPreviewer is the export's view of one course given its new target
// (feeds.PreviewCourse with the configuration bound).
type ExportPreviewer interface {
	PreviewCourse(ctx context.Context, tx pgx.Tx, site, course, target string) (*feeds.CoursePreview, error)
}

// Options configure a Service.
type Options struct {
	// Knowledge is what changes are checked against (the roles MIM enrols).
	Knowledge mapping.Knowledge
	// Export previews the next export of the course.
	Export ExportPreviewer
	// Project holds the transform models (transform.LoadEmbedded()).
	Project *transform.Project
	// StatementTimeout bounds each statement of a preview (default 60s).
	StatementTimeout time.Duration
}

// Service previews and applies staff changes.
type Service struct {
	pool *pgxpool.Pool
	opts Options
}

// New returns the service over the warehouse pool.
func New(pool *pgxpool.Pool, opts Options) *Service {
	if opts.StatementTimeout <= 0 {
		opts.StatementTimeout = 60 * time.Second
	}
	return &Service{pool: pool, opts: opts}
}

// People counts the course's target by role and by whether the person
// resolves to one Moodle account (fct_enrolment_target's user_status).
type People struct {
	Role, UserStatus string
	Count            int64
}

// Preview is what a change would do, or did.
type Preview struct {
	Change mapping.Change
	// Mapping is the mapping as the change leaves it (as it was, for a removal).
	Mapping mapping.Mapping
	// Entity describes the SIS entity the mapping names (nil when it is not
	// among this year's, mart.mapping_candidate).
	Entity *mapping.Candidate
	// Names are the Moodle names of the sample users, by user idnumber.
	Names map[string]string
	// Export is what the next export would send for the course.
	Export *feeds.CoursePreview
	// CourseStatus is whether the course's idnumber names one course on
	// the site in the warehouse's copy of Moodle: one, none (not read yet,
	// or gone), several; "" when nothing maps to it.
	CourseStatus string
	People       []People
	// Groups and GroupMembers are the CMIS groups group sync would keep
	// in the course.
	Groups, GroupMembers int64
	// Applied is true when the change was committed.
	Applied bool
}

// RefusedError is a change the guards refuse; Msg is for the person asking.
type RefusedError struct{ Msg string }

func (e *RefusedError) Error() string { return e.Msg }

// Preview shows what ch would do to course on site; it changes nothing.
func (s *Service) Preview(ctx context.Context, site, course string, ch mapping.Change) (*Preview, error) {
	return s.run(ctx, site, course, ch, "", nil, false)
}

// Apply makes ch, by the person by (with detail for the history), and
// returns what the next export will do. It is refused with a
// *mapping.ChangeError for a change staff may not make, a *RefusedError
// when edits are frozen or when the change alone would make the site's
// next export fall below the threshold. Drops past the per-course guard
// are not refused: the change is made and the export holds them for the
// integration team, as it holds any course's.
func (s *Service) Apply(ctx context.Context, site, course string, ch mapping.Change, by string, detail map[string]any) (*Preview, error) {
	return s.run(ctx, site, course, ch, by, detail, true)
}

func (s *Service) run(ctx context.Context, site, course string, ch mapping.Change, by string, detail map[string]any, apply bool) (*Preview, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("beginning the change of course %s: %w", course, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", s.opts.StatementTimeout.Milliseconds())); err != nil {
		return nil, err
	}
	f, err := mapping.EditFreeze(ctx, tx, site, course)
	if err != nil {
		return nil, err
	}
	if f.Frozen {
		return nil, &RefusedError{Msg: f.Message()}
	}
	if by == "" {
		by = "preview"
	}
	m, err := mapping.ApplyChange(ctx, tx, site, course, ch, s.opts.Knowledge, by, detail)
	if err != nil {
		return nil, err
	}
	p := &Preview{Change: ch, Mapping: m}
	if err := s.evaluate(ctx, tx, site, course, p); err != nil {
		return nil, err
	}
	if !apply {
		return p, nil
	}
	if p.Export.Causes {
		return p, &RefusedError{Msg: fmt.Sprintf("this change alone would make the whole site's next export fall below the threshold (it would keep %.1f%% of the active students and %.1f%% of the memberships, the limit is %d%%); it was not made. The integration team can make it.",
			p.Export.StudentsKept, p.Export.MembershipsKept, p.Export.ThresholdLimit)}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("committing the change of course %s: %w", course, err)
	}
	p.Applied = true
	return p, nil
}

// evaluate builds the course's marts as the change leaves its mappings and
// asks the export what it would send.
func (s *Service) evaluate(ctx context.Context, tx pgx.Tx, site, course string, p *Preview) error {
	if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+scopeTable); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE mim_scope_course_mapping ON COMMIT DROP AS
		SELECT * FROM ctl.course_mapping WHERE instance = $1 AND course_idnumber = $2`, site, course); err != nil {
		return fmt.Errorf("scoping the preview to course %s: %w", course, err)
	}
	sources := map[string]string{"ctl.course_mapping": scopeTable}
	target, err := transform.Evaluate(ctx, tx, s.opts.Project, targetMart, sources)
	if err != nil {
		return notBuilt(err)
	}
	rows, err := tx.Query(ctx, `SELECT role, user_status, count(*) FROM `+transform.EvalRelation(peopleMart)+`
		GROUP BY 1, 2 ORDER BY 1, 2`)
	if err != nil {
		return fmt.Errorf("counting the course's people: %w", err)
	}
	if p.People, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (People, error) {
		var x People
		err := r.Scan(&x.Role, &x.UserStatus, &x.Count)
		return x, err
	}); err != nil {
		return fmt.Errorf("counting the course's people: %w", err)
	}
	err = tx.QueryRow(ctx, `SELECT CASE coalesce(max(courses), 0) WHEN 0 THEN 'none' WHEN 1 THEN 'one' ELSE 'several' END
		FROM int.moodle_course_idnumber WHERE instance = $1 AND idnumber = $2`, site, course).Scan(&p.CourseStatus)
	if err != nil {
		return notBuilt(fmt.Errorf("looking the course up: %w", err))
	}
	groups, err := transform.Evaluate(ctx, tx, s.opts.Project, groupMart, sources)
	if err != nil {
		return notBuilt(err)
	}
	if err := tx.QueryRow(ctx, `SELECT count(DISTINCT group_idnumber), count(DISTINCT (group_idnumber, userid)) FILTER (WHERE userid IS NOT NULL)
		FROM `+groups+` WHERE instance = $1 AND course_idnumber = $2`, site, course).Scan(&p.Groups, &p.GroupMembers); err != nil {
		return fmt.Errorf("counting the course's groups: %w", err)
	}
	if p.Export, err = s.opts.Export.PreviewCourse(ctx, tx, site, course, target); err != nil {
		return fmt.Errorf("previewing the export of course %s: %w", course, err)
	}
	cs, err := mapping.Candidates(ctx, tx, []mapping.Key{p.Mapping.Key()})
	if err != nil {
		return err
	}
	if len(cs) == 1 {
		p.Entity = &cs[0]
	}
	var users []string
	for _, m := range append(p.Export.SampleAdds, p.Export.SampleDrops...) {
		users = append(users, m.User)
	}
	rows, err = tx.Query(ctx, `SELECT DISTINCT ON (idnumber) idnumber, trim(coalesce(firstname, '') || ' ' || coalesce(lastname, ''))
		FROM stg.moodle_user WHERE instance = $1 AND idnumber = ANY($2) ORDER BY idnumber, user_id DESC`, site, users)
	if err != nil {
		return fmt.Errorf("naming the course's people: %w", err)
	}
	p.Names = map[string]string{}
	var id, name string
	if _, err := pgx.ForEachRow(rows, []any{&id, &name}, func() error { p.Names[id] = name; return nil }); err != nil {
		return fmt.Errorf("naming the course's people: %w", err)
	}
	return nil
}

// ErrNotBuilt says the warehouse has no marts to preview against yet.
var ErrNotBuilt = errors.New("the warehouse has not been built yet (no mim run has finished): a change can be previewed after the first night")

func notBuilt(err error) error {
	var me *transform.ModelError
	if errors.As(err, &me) && isUndefined(me.Err) {
		return fmt.Errorf("%w (%v)", ErrNotBuilt, err)
	}
	if isUndefined(err) {
		return fmt.Errorf("%w (%v)", ErrNotBuilt, err)
	}
	return err
}

func isUndefined(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000") // undefined_table, invalid_schema_name
}
