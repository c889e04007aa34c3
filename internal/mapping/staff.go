package mapping

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// OriginStaff is the origin of a mapping course staff made through the LTI
// tool. Like a manual mapping it wins over the rules.
const OriginStaff = "lti"

// SettingEditsFrozen is the setting that freezes staff edits (migration
// 00120): global deactivation and the rollover set it.
const SettingEditsFrozen = "staff_edits_frozen"

// StaffKinds are the kinds of SIS entity staff may map their course to.
var StaffKinds = []string{"module_occurrence", "programme", "route", "department", "faculty"}

// Change actions.
const (
	ActionAdd    = "add"
	ActionUpdate = "update"
	ActionRemove = "remove"
)

// Change is one change course staff ask for: add a mapping of their course
// to a SIS entity, change the roles or group import of one, or remove one.
type Change struct {
	Action string `json:"action"`
	// ID is the mapping an update or removal is about.
	ID int64 `json:"id,omitempty"`
	// Kind and Key name the SIS entity an add maps to
	// (mart.mapping_candidate's sis_kind and sis_key).
	Kind string `json:"kind,omitempty"`
	Key  string `json:"key,omitempty"`
	// Roles and GroupSync are what an add or update sets.
	Roles     []string `json:"roles,omitempty"`
	GroupSync bool     `json:"group_sync,omitempty"`
}

// ChangeError refuses a change; Msg is for the person who asked.
type ChangeError struct{ Msg string }

func (e *ChangeError) Error() string { return e.Msg }

func refuse(format string, args ...any) error { return &ChangeError{Msg: fmt.Sprintf(format, args...)} }

// Freeze says whether staff may change a course's mappings now, and why not.
type Freeze struct {
	Frozen bool
	// Global is true for the freeze of every course (global deactivation,
	// rollover); false for one course whose mappings were all deactivated.
	Global bool
	Reason string
	By     string
	Since  time.Time
}

// Message is what the page says of the freeze.
func (f Freeze) Message() string {
	if !f.Frozen {
		return ""
	}
	var b strings.Builder
	if f.Global {
		b.WriteString("Course mappings are frozen for every course")
	} else {
		b.WriteString("The integration team froze this course's enrolments (its mappings are inactive)")
	}
	if !f.Since.IsZero() {
		fmt.Fprintf(&b, " since %s", f.Since.Local().Format("2 January 2006 15:04"))
	}
	if f.Reason != "" {
		fmt.Fprintf(&b, ": %s", f.Reason)
	}
	b.WriteString(". Enrolments stay exactly as they are; changes are not possible here until the integration team releases them.")
	return b.String()
}

// EditFreeze reads whether staff edits of course on site are frozen: by the
// setting staff_edits_frozen (global deactivation, rollover), or because
// every mapping of the course is inactive (the export leaves such a course
// as it is, and staff must not undo that). Inside a change's transaction it
// locks the setting's row, so a freeze and a change never interleave.
func EditFreeze(ctx context.Context, q warehouse.Querier, site, course string) (Freeze, error) {
	lock := ""
	if _, ok := q.(pgx.Tx); ok {
		lock = " FOR SHARE"
	}
	var v string
	if err := q.QueryRow(ctx, `SELECT value FROM ctl.settings WHERE key = $1`+lock, SettingEditsFrozen).Scan(&v); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return Freeze{}, fmt.Errorf("reading setting %s: it does not exist (run mim migrate)", SettingEditsFrozen)
		}
		return Freeze{}, fmt.Errorf("reading setting %s: %w", SettingEditsFrozen, err)
	}
	if v == "true" {
		f := Freeze{Frozen: true, Global: true}
		var reason *string
		err := q.QueryRow(ctx, `SELECT changed_at, changed_by, reason FROM ctl.settings_history
			WHERE key = $1 ORDER BY change_id DESC LIMIT 1`, SettingEditsFrozen).Scan(&f.Since, &f.By, &reason)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return f, fmt.Errorf("reading why staff edits are frozen: %w", err)
		}
		if reason != nil {
			f.Reason = *reason
		}
		return f, nil
	}
	var mappings, active int
	if err := q.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE active) FROM ctl.course_mapping
		WHERE instance = $1 AND course_idnumber = $2`, site, course).Scan(&mappings, &active); err != nil {
		return Freeze{}, fmt.Errorf("reading the mappings of course %s: %w", course, err)
	}
	if mappings == 0 || active > 0 {
		return Freeze{}, nil
	}
	f := Freeze{Frozen: true}
	var reason *string
	err := q.QueryRow(ctx, `SELECT at, by, detail ->> 'reason' FROM ctl.course_mapping_event
		WHERE instance = $1 AND course_idnumber = $2 AND action = 'deactivate' ORDER BY event_id DESC LIMIT 1`,
		site, course).Scan(&f.Since, &f.By, &reason)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return f, fmt.Errorf("reading why course %s is frozen: %w", course, err)
	}
	if reason != nil {
		f.Reason = *reason
	}
	return f, nil
}

// FreezeEdits sets or releases the freeze of staff edits, recorded with
// who and why. Global deactivation and the rollover call it in their
// transaction before they deactivate, so a staff change in flight either
// commits first (and is deactivated with the rest) or sees the freeze. It
// returns the old value.
func FreezeEdits(ctx context.Context, q warehouse.Querier, frozen bool, by, reason string, runID *int64) (string, error) {
	return settings.Set(ctx, q, SettingEditsFrozen, strconv.FormatBool(frozen), by, reason, runID)
}

// ApplyChange makes ch to the mappings of course on site inside tx, as
// course staff may make it, and returns the mapping as it now is (as it was,
// for a removal). Staff map to a SIS entity of mart.mapping_candidate (the
// current year's occurrences, programmes, routes, departments, faculties);
// a module occurrence takes its own academic year, the others the setting
// academic_year (any year while it is 0). They change and remove mappings
// of their own course only, and not those a rule derives from the course
// idnumber (a rule would make them again). Roles must be known (k.Roles);
// group import applies to module occurrences. Every change is recorded in
// ctl.course_mapping_event by by, with detail. A refusal is a *ChangeError.
// It does not check the freeze: the caller does, in tx, with EditFreeze.
func ApplyChange(ctx context.Context, tx pgx.Tx, site, course string, ch Change, k Knowledge, by string, detail map[string]any) (Mapping, error) {
	if site == "" || course == "" {
		return Mapping{}, refuse("the course has no ID number in Moodle, so nothing can feed it (IMS Enterprise finds courses by ID number)")
	}
	roles := slices.Clone(ch.Roles)
	slices.Sort(roles)
	roles = slices.Compact(roles)
	checkRoles := func() error {
		if len(roles) == 0 {
			return refuse("choose at least one role")
		}
		for _, r := range roles {
			if len(k.Roles) > 0 && !slices.Contains(k.Roles, r) {
				return refuse("%q is not a role MIM enrols (%s)", r, strings.Join(k.Roles, ", "))
			}
		}
		return nil
	}
	with := func(extra map[string]any) map[string]any {
		d := map[string]any{}
		for k, v := range detail {
			d[k] = v
		}
		for k, v := range extra {
			d[k] = v
		}
		return d
	}
	switch ch.Action {
	case ActionAdd:
		if !slices.Contains(StaffKinds, ch.Kind) {
			return Mapping{}, refuse("%q is not something a course can be mapped to here (%s)", ch.Kind, strings.Join(StaffKinds, ", "))
		}
		if err := checkRoles(); err != nil {
			return Mapping{}, err
		}
		if ch.GroupSync && ch.Kind != "module_occurrence" {
			return Mapping{}, refuse("group import applies to module occurrences only (CMIS teaching groups belong to an occurrence)")
		}
		c, ok, err := candidate(ctx, tx, ch.Kind, ch.Key)
		if err != nil {
			return Mapping{}, err
		}
		if !ok {
			return Mapping{}, refuse("there is no %s %q in this year's SITS data", strings.ReplaceAll(ch.Kind, "_", " "), ch.Key)
		}
		m := Mapping{Instance: site, CourseIDNumber: course, SISKind: ch.Kind, SISKey: ch.Key, MinRegStatus: "APP",
			Roles: roles, Active: true, GroupSync: ch.GroupSync, Origin: OriginStaff}
		if ch.Kind == "module_occurrence" {
			m.AcademicYear = c.AcademicYear
		} else if y, err := settings.Int(ctx, tx, "academic_year"); err != nil {
			return Mapping{}, err
		} else if y > 0 {
			m.AcademicYear = strconv.Itoa(y)
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM ctl.course_mapping WHERE instance = $1 AND course_idnumber = $2
			AND sis_kind = $3 AND sis_key = $4 AND academic_year = $5 AND section = '' AND course_year = '')`,
			site, course, m.SISKind, m.SISKey, m.AcademicYear).Scan(&exists); err != nil {
			return Mapping{}, fmt.Errorf("looking for an existing mapping: %w", err)
		}
		if exists {
			return Mapping{}, refuse("the course is already mapped to %s %s", strings.ReplaceAll(c.Kind, "_", " "), c.Code)
		}
		err = tx.QueryRow(ctx, `INSERT INTO ctl.course_mapping (instance, course_idnumber, sis_kind, sis_key, academic_year,
			min_reg_status, roles, active, group_sync, origin, created_by, updated_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, true, $8, $9, $10, $10) RETURNING mapping_id, created_at, updated_at`,
			m.Instance, m.CourseIDNumber, m.SISKind, m.SISKey, m.AcademicYear, m.MinRegStatus, m.Roles, m.GroupSync, m.Origin, by).
			Scan(&m.ID, &m.CreatedAt, &m.UpdatedAt)
		if err == nil {
			m.CreatedBy, m.UpdatedBy = by, by
			err = event(ctx, tx, m.ID, m, "create", by, with(map[string]any{"origin": m.Origin, "mapping": describe(m, true)}))
		}
		if err != nil {
			return Mapping{}, fmt.Errorf("adding the mapping of %s to %s %s: %w", course, m.SISKind, m.SISKey, err)
		}
		return m, nil

	case ActionUpdate, ActionRemove:
		old, err := ownMapping(ctx, tx, site, course, ch.ID)
		if err != nil {
			return Mapping{}, err
		}
		if ch.Action == ActionRemove {
			if err := event(ctx, tx, old.ID, old, "delete", by, with(map[string]any{"origin": old.Origin, "mapping": describe(old, true)})); err != nil {
				return Mapping{}, fmt.Errorf("removing mapping %d: %w", old.ID, err)
			}
			if _, err := tx.Exec(ctx, `DELETE FROM ctl.course_mapping WHERE mapping_id = $1`, old.ID); err != nil {
				return Mapping{}, fmt.Errorf("removing mapping %d: %w", old.ID, err)
			}
			return old, nil
		}
		if err := checkRoles(); err != nil {
			return Mapping{}, err
		}
		if ch.GroupSync && old.SISKind != "module_occurrence" && old.SISKind != "section" {
			return Mapping{}, refuse("group import applies to module occurrences only (CMIS teaching groups belong to an occurrence)")
		}
		want := old
		want.Roles, want.GroupSync = roles, ch.GroupSync
		if slices.Equal(want.Roles, old.Roles) && want.GroupSync == old.GroupSync {
			return Mapping{}, refuse("nothing to change: the mapping already has these roles and this group import")
		}
		if err := tx.QueryRow(ctx, `UPDATE ctl.course_mapping SET roles = $2, group_sync = $3, updated_at = now(), updated_by = $4
			WHERE mapping_id = $1 RETURNING updated_at`, old.ID, want.Roles, want.GroupSync, by).Scan(&want.UpdatedAt); err != nil {
			return Mapping{}, fmt.Errorf("changing mapping %d: %w", old.ID, err)
		}
		want.UpdatedBy = by
		if err := event(ctx, tx, old.ID, want, "update", by, with(map[string]any{"origin": old.Origin,
			"before": describe(old, false), "after": describe(want, false)})); err != nil {
			return Mapping{}, fmt.Errorf("changing mapping %d: %w", old.ID, err)
		}
		return want, nil
	}
	return Mapping{}, refuse("%q is not a change (add, update or remove)", ch.Action)
}

// ownMapping reads mapping id, which must be one of course's on site that
// staff may change, locking it.
func ownMapping(ctx context.Context, tx pgx.Tx, site, course string, id int64) (Mapping, error) {
	rows, err := tx.Query(ctx, `SELECT `+columns+` FROM ctl.course_mapping WHERE mapping_id = $1 FOR UPDATE`, id)
	if err != nil {
		return Mapping{}, fmt.Errorf("reading mapping %d: %w", id, err)
	}
	m, err := pgx.CollectExactlyOneRow(rows, scan)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Mapping{}, refuse("mapping %d no longer exists (someone else may have removed it): reload the page", id)
	case err != nil:
		return Mapping{}, fmt.Errorf("reading mapping %d: %w", id, err)
	case m.Instance != site || m.CourseIDNumber != course:
		// Never say what another course's mapping is.
		return Mapping{}, refuse("mapping %d is not one of this course's", id)
	case strings.HasPrefix(m.Origin, "rule:"):
		return Mapping{}, refuse("this mapping is made by the rule %q from the course's ID number; the integration team changes it", strings.TrimPrefix(m.Origin, "rule:"))
	}
	return m, nil
}

// Candidate is one SIS entity a course can be mapped to
// (mart.mapping_candidate).
type Candidate struct {
	Kind, Key, Code, Title string
	AcademicYear           string
	Department, Period     string
	Students               int64
}

const candidateColumns = `sis_kind, sis_key, code, title, academic_year, coalesce(department, ''), coalesce(period, ''), students`

func scanCandidate(r pgx.CollectableRow) (Candidate, error) {
	var c Candidate
	err := r.Scan(&c.Kind, &c.Key, &c.Code, &c.Title, &c.AcademicYear, &c.Department, &c.Period, &c.Students)
	return c, err
}

// ErrNoCatalogue says mart.mapping_candidate has not been built.
var ErrNoCatalogue = errors.New("the list of SIS entities (mart.mapping_candidate) has not been built yet: it comes with the next mim run")

func candidate(ctx context.Context, q warehouse.Querier, kind, key string) (Candidate, bool, error) {
	cs, err := Candidates(ctx, q, []Key{{SISKind: kind, SISKey: key}})
	if err != nil {
		return Candidate{}, false, err
	}
	if len(cs) == 0 {
		return Candidate{}, false, nil
	}
	return cs[0], true, nil
}

// Candidates describes the SIS entities keys name (only SISKind and SISKey
// are read), those that are in mart.mapping_candidate.
func Candidates(ctx context.Context, q warehouse.Querier, keys []Key) ([]Candidate, error) {
	kinds, ks := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		kinds[i], ks[i] = k.SISKind, k.SISKey
	}
	rows, err := q.Query(ctx, `SELECT `+candidateColumns+` FROM mart.mapping_candidate
		WHERE (sis_kind, sis_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, kinds, ks)
	if err != nil {
		return nil, catalogueError(err)
	}
	out, err := pgx.CollectRows(rows, scanCandidate)
	if err != nil {
		return nil, catalogueError(err)
	}
	return out, nil
}

// Search finds SIS entities for a course to map to: every word of text
// (case-insensitive) must appear in an entity's codes, name, department,
// period or year; kind, if set, limits the kind. Entities whose code starts
// with the text come first, then by kind and code. It returns at most limit
// and whether there were more.
func Search(ctx context.Context, q warehouse.Querier, text, kind string, limit int) ([]Candidate, bool, error) {
	words := strings.Fields(strings.ToLower(text))
	if len(words) == 0 {
		return nil, false, nil
	}
	if len(words) > 8 {
		words = words[:8]
	}
	patterns := make([]string, len(words))
	for i, w := range words {
		patterns[i] = "%" + likeEscape(w) + "%"
	}
	prefix := likeEscape(strings.ToLower(strings.TrimSpace(text))) + "%"
	rows, err := q.Query(ctx, `SELECT `+candidateColumns+` FROM mart.mapping_candidate
		WHERE search LIKE ALL ($1::text[]) AND ($2 = '' OR sis_kind = $2)
		ORDER BY lower(code) LIKE $3 DESC, array_position($4::text[], sis_kind), code, sis_key
		LIMIT $5`, patterns, kind, prefix, StaffKinds, limit+1)
	if err != nil {
		return nil, false, catalogueError(err)
	}
	out, err := pgx.CollectRows(rows, scanCandidate)
	if err != nil {
		return nil, false, catalogueError(err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func catalogueError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table
		return ErrNoCatalogue
	}
	return fmt.Errorf("searching the SIS entities: %w", err)
}
