// Package mapping keeps ctl.course_mapping, the table that says which SIS
// entities (module occurrences, programmes, routes, departments, faculties,
// course sections) feed which Moodle course: importing files (CSV, and the
// JSON shape of a PowerCampus-style mapping file), deriving mappings from
// course idnumbers by configured rules, listing, activating and
// deactivating them, the academic-year rollover, and the changes course
// staff make through the LTI tool (staff.go: checked, frozen with the
// global deactivation, searched in mart.mapping_candidate). Every change is
// kept in ctl.course_mapping_event with who made it and when.
package mapping

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Mapping is one row of ctl.course_mapping.
type Mapping struct {
	ID             int64
	Instance       string // Moodle site name
	CourseIDNumber string // the Moodle course's idnumber (the IMS group sourcedid)
	SISKind        string // module_occurrence, programme, route, department, faculty, section
	SISKey         string
	AcademicYear   string // start year "2025", or "" for any
	Section        string // for sis_kind section: the occurrence/section code, "" = all
	CourseYear     string // year-of-study filter for programme/route/department/faculty
	MinRegStatus   string // CON, APP or NEW
	Roles          []string
	Active         bool
	GroupSync      bool
	Origin         string // manual, import:<file>, rule:<name>
	CreatedAt      time.Time
	CreatedBy      string
	UpdatedAt      time.Time
	UpdatedBy      string
}

// Key is what identifies a mapping (the table's unique key).
type Key struct {
	Instance, CourseIDNumber, SISKind, SISKey, AcademicYear, Section, CourseYear string
}

// Key returns the mapping's identity.
func (m Mapping) Key() Key {
	return Key{m.Instance, m.CourseIDNumber, m.SISKind, m.SISKey, m.AcademicYear, m.Section, m.CourseYear}
}

func (k Key) String() string {
	s := fmt.Sprintf("%s %s <- %s %s", k.Instance, k.CourseIDNumber, k.SISKind, k.SISKey)
	for _, p := range []struct{ name, v string }{{"year", k.AcademicYear}, {"section", k.Section}, {"course_year", k.CourseYear}} {
		if p.v != "" {
			s += " " + p.name + "=" + p.v
		}
	}
	return s
}

// Filter selects mappings; empty fields match everything.
type Filter struct {
	Instance     string
	Course       string // course idnumber
	Kind         string
	AcademicYear string
	Origin       string // exact, or a prefix ending in ':' (import:, rule:)
	Active       *bool
	ID           int64
}

// Empty reports whether the filter selects every mapping.
func (f Filter) Empty() bool { return f == Filter{} }

func (f Filter) where(args *[]any) string {
	var conds []string
	add := func(cond string, v any) {
		*args = append(*args, v)
		conds = append(conds, fmt.Sprintf(cond, len(*args)))
	}
	if f.Instance != "" {
		add("instance = $%d", f.Instance)
	}
	if f.Course != "" {
		add("course_idnumber = $%d", f.Course)
	}
	if f.Kind != "" {
		add("sis_kind = $%d", f.Kind)
	}
	if f.AcademicYear != "" {
		add("academic_year = $%d", f.AcademicYear)
	}
	if f.Origin != "" {
		if strings.HasSuffix(f.Origin, ":") {
			add("starts_with(origin, $%d)", f.Origin)
		} else {
			add("origin = $%d", f.Origin)
		}
	}
	if f.Active != nil {
		add("active = $%d", *f.Active)
	}
	if f.ID != 0 {
		add("mapping_id = $%d", f.ID)
	}
	if len(conds) == 0 {
		return "true"
	}
	return strings.Join(conds, " AND ")
}

const columns = `mapping_id, instance, course_idnumber, sis_kind, sis_key, academic_year, section, course_year,
	min_reg_status, roles, active, group_sync, origin, created_at, created_by, updated_at, updated_by`

func scan(row pgx.CollectableRow) (Mapping, error) {
	var m Mapping
	err := row.Scan(&m.ID, &m.Instance, &m.CourseIDNumber, &m.SISKind, &m.SISKey, &m.AcademicYear, &m.Section, &m.CourseYear,
		&m.MinRegStatus, &m.Roles, &m.Active, &m.GroupSync, &m.Origin, &m.CreatedAt, &m.CreatedBy, &m.UpdatedAt, &m.UpdatedBy)
	return m, err
}

// List returns the mappings f selects, ordered by site, course and key.
func List(ctx context.Context, q warehouse.Querier, f Filter) ([]Mapping, error) {
	var args []any
	rows, err := q.Query(ctx, `SELECT `+columns+` FROM ctl.course_mapping WHERE `+f.where(&args)+`
		ORDER BY instance, course_idnumber, sis_kind, sis_key, academic_year, section, course_year`, args...)
	if err != nil {
		return nil, fmt.Errorf("listing course mappings: %w", err)
	}
	out, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, fmt.Errorf("listing course mappings: %w", err)
	}
	return out, nil
}

// SetActive activates or deactivates every mapping f selects whose state
// differs, recording one event per mapping changed (action activate or
// deactivate, with the reason), and returns how many changed. Run it in a
// transaction with the rest of a change (the rollover does).
func SetActive(ctx context.Context, q warehouse.Querier, f Filter, active bool, by, reason string) (int64, error) {
	action := "deactivate"
	if active {
		action = "activate"
	}
	f.Active = nil
	args := []any{active, by, action, reason}
	tag, err := q.Exec(ctx, `WITH changed AS (
			UPDATE ctl.course_mapping SET active = $1, updated_at = now(), updated_by = $2
			WHERE active <> $1 AND `+f.where(&args)+`
			RETURNING mapping_id, instance, course_idnumber)
		INSERT INTO ctl.course_mapping_event (mapping_id, instance, course_idnumber, action, by, detail)
		SELECT mapping_id, instance, course_idnumber, $3, $2, jsonb_strip_nulls(jsonb_build_object('reason', NULLIF($4, '')))
		FROM changed`, args...)
	if err != nil {
		return 0, fmt.Errorf("%sing course mappings: %w", strings.TrimSuffix(action, "e"), err)
	}
	return tag.RowsAffected(), nil
}

// Event is one recorded change of a mapping.
type Event struct {
	ID             int64
	MappingID      *int64
	Instance       string
	CourseIDNumber string
	Action         string
	At             time.Time
	By             string
	Detail         map[string]any
}

// Events returns the changes of the mappings of one course (or all, if
// course is ""), newest first, at most limit.
func Events(ctx context.Context, q warehouse.Querier, instance, course string, limit int) ([]Event, error) {
	rows, err := q.Query(ctx, `SELECT event_id, mapping_id, instance, course_idnumber, action, at, by, detail
		FROM ctl.course_mapping_event WHERE ($1 = '' OR instance = $1) AND ($2 = '' OR course_idnumber = $2)
		ORDER BY event_id DESC LIMIT $3`, instance, course, limit)
	if err != nil {
		return nil, fmt.Errorf("reading course mapping events: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Event, error) {
		var e Event
		var detail []byte
		err := row.Scan(&e.ID, &e.MappingID, &e.Instance, &e.CourseIDNumber, &e.Action, &e.At, &e.By, &detail)
		if err == nil {
			err = json.Unmarshal(detail, &e.Detail)
		}
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading course mapping events: %w", err)
	}
	return out, nil
}

// StartYear reads an academic year code the way ref.ayr_start does in SQL:
// "2025", "2025/6", "2025/26" and "25/26" all give 2025.
func StartYear(code string) (int, bool) {
	code = strings.TrimSpace(code)
	digits := func(s string) bool {
		for _, c := range s {
			if c < '0' || c > '9' {
				return false
			}
		}
		return s != ""
	}
	first, second, slash := strings.Cut(code, "/")
	switch {
	case !slash && len(code) == 4 && digits(code):
		n, _ := strconv.Atoi(code)
		return n, true
	case slash && len(first) == 4 && digits(first) && (len(second) == 1 || len(second) == 2) && digits(second):
		n, _ := strconv.Atoi(first)
		s, _ := strconv.Atoi(second)
		mod := 10
		if len(second) == 2 {
			mod = 100
		}
		return n, (n+1)%mod == s
	case slash && len(first) == 2 && len(second) == 2 && digits(first) && digits(second):
		n, _ := strconv.Atoi(first)
		s, _ := strconv.Atoi(second)
		if (n+1)%100 != s {
			return 0, false
		}
		if n < 70 {
			return 2000 + n, true
		}
		return 1900 + n, true
	}
	return 0, false
}

// Knowledge is what validation checks values against: the configured
// Moodle sites and roles. Empty lists are not checked.
type Knowledge struct {
	Sites []string
	Roles []string
}
