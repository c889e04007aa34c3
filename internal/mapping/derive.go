package mapping

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// DeriveResult counts what Derive did.
type DeriveResult struct {
	Courses  int // Moodle courses with an idnumber that were looked at
	Matched  int // courses a rule matched
	Created  int // new mappings
	Updated  int // mappings of a rule whose roles, status or group sync the rule changed
	Existing int // matches already mapped by a rule (left as they are, active or not)
	Manual   int // matches skipped because the course has a mapping made by hand (or imported)
	// Invalid lists matches that expand to an unusable mapping (first 10),
	// e.g. an academic_year template giving "20x5".
	Invalid      []string
	InvalidCount int
	// Created mappings, first 20, for the report.
	Sample []Key
}

func (r DeriveResult) String() string {
	s := fmt.Sprintf("%d courses, %d matched: %d created, %d updated, %d already mapped, %d mapped by hand", r.Courses, r.Matched,
		r.Created, r.Updated, r.Existing, r.Manual)
	if r.InvalidCount > 0 {
		s += fmt.Sprintf(", %d unusable (%s)", r.InvalidCount, strings.Join(r.Invalid, "; "))
	}
	return s
}

// Derive applies the configured rules to the Moodle courses of the
// warehouse (stg.moodle_course: run it after staging, as the transform's
// hook does) inside tx. A course that matches a rule gets a mapping with
// origin rule:<name>, created active; the first rule (in configuration
// order) that matches a course decides. A course that has any mapping made
// by hand or imported is left alone: a manual mapping always wins. Derive
// never touches a mapping it did not create, and never changes a mapping's active state, so an operator's
// or the rollover's deactivation stands; it updates the roles, minimum
// status and group sync of its own mappings when the rule changed them.
// Every creation and update is recorded as an event by by. A mapping whose
// course left Moodle is kept (the marts ignore courses that do not exist).
func Derive(ctx context.Context, tx pgx.Tx, rules []Rule, by string) (DeriveResult, error) {
	var res DeriveResult
	if len(rules) == 0 {
		return res, nil
	}
	courses, err := moodleCourses(ctx, tx)
	if err != nil {
		return res, fmt.Errorf("deriving course mappings: %w", err)
	}
	res.Courses = len(courses)
	cands := matchRules(courses, rules, &res)
	if len(cands) == 0 {
		return res, nil
	}
	if err := stageDerived(ctx, tx, cands); err != nil {
		return res, fmt.Errorf("deriving course mappings: %w", err)
	}
	defer func() { _, _ = tx.Exec(ctx, `DROP TABLE IF EXISTS mim_derived_mapping`) }()
	keys, err := createDerived(ctx, tx, by)
	if err != nil {
		return res, fmt.Errorf("deriving course mappings: creating: %w", err)
	}
	res.Created = len(keys)
	res.Sample = keys[:min(len(keys), 20)]
	if res.Updated, err = updateDerived(ctx, tx, by); err != nil {
		return res, fmt.Errorf("deriving course mappings: updating: %w", err)
	}
	if res.Manual, err = countManual(ctx, tx); err != nil {
		return res, fmt.Errorf("deriving course mappings: %w", err)
	}
	res.Existing = len(cands) - res.Created - res.Manual
	return res, nil
}

// moodleCourse is a Moodle course a rule may map.
type moodleCourse struct{ instance, idnumber string }

// moodleCourses reads the Moodle courses with an idnumber (not the site
// course) from stg.moodle_course, which must exist.
func moodleCourses(ctx context.Context, tx pgx.Tx) ([]moodleCourse, error) {
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('stg.moodle_course') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, fmt.Errorf("the warehouse has no stg.moodle_course yet; run `mim transform` first")
	}
	rows, err := tx.Query(ctx, `SELECT instance, idnumber FROM stg.moodle_course
		WHERE idnumber IS NOT NULL AND NOT is_site ORDER BY instance, idnumber`)
	if err != nil {
		return nil, fmt.Errorf("reading Moodle courses: %w", err)
	}
	courses, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (moodleCourse, error) {
		var c moodleCourse
		err := r.Scan(&c.instance, &c.idnumber)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading Moodle courses: %w", err)
	}
	return courses, nil
}

// matchRules maps each course by the first rule (in configuration order)
// that matches it, counting matches in res. A course it cannot map (a bad
// year, an empty or overlong key) is reported in res, not passed to a later
// rule.
func matchRules(courses []moodleCourse, rules []Rule, res *DeriveResult) []Mapping {
	var out []Mapping
	for _, c := range courses {
		for i := range rules {
			r := &rules[i]
			if len(r.Instances) > 0 && !slices.Contains(r.Instances, c.instance) {
				continue
			}
			ok, key, year, section, courseYear := r.Match(c.idnumber)
			if !ok {
				continue
			}
			res.Matched++
			m := Mapping{Instance: c.instance, CourseIDNumber: c.idnumber, SISKind: r.SISKind, SISKey: key,
				Section: section, CourseYear: courseYear, MinRegStatus: r.MinRegStatus, Roles: sortedRoles(r.Roles),
				GroupSync: r.GroupSync, Origin: "rule:" + r.Name}
			problem := ""
			if year != "" {
				if y, ok := StartYear(year); ok {
					m.AcademicYear = strconv.Itoa(y)
				} else {
					problem = fmt.Sprintf("academic_year %q", year)
				}
			}
			if key == "" || len(key) > 100 {
				problem = fmt.Sprintf("sis_key %q", key)
			}
			if problem != "" {
				res.InvalidCount++
				if len(res.Invalid) < 10 {
					res.Invalid = append(res.Invalid, fmt.Sprintf("%s %s: rule %s gives %s", c.instance, c.idnumber, r.Name, problem))
				}
				break
			}
			out = append(out, m)
			break
		}
	}
	return out
}

// stageDerived copies the derived mappings into the temporary table
// mim_derived_mapping (dropped at commit), which the next steps read.
func stageDerived(ctx context.Context, tx pgx.Tx, cands []Mapping) error {
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE mim_derived_mapping (
			instance text, course_idnumber text, sis_kind text, sis_key text, academic_year text, section text,
			course_year text, min_reg_status text, roles text[], group_sync boolean, origin text) ON COMMIT DROP`); err != nil {
		return err
	}
	rows := make([][]any, len(cands))
	for i, m := range cands {
		rows[i] = []any{m.Instance, m.CourseIDNumber, m.SISKind, m.SISKey, m.AcademicYear, m.Section,
			m.CourseYear, m.MinRegStatus, m.Roles, m.GroupSync, m.Origin}
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"mim_derived_mapping"}, []string{"instance", "course_idnumber", "sis_kind", "sis_key",
		"academic_year", "section", "course_year", "min_reg_status", "roles", "group_sync", "origin"}, pgx.CopyFromRows(rows))
	return err
}

// createDerived creates the derived mappings not there yet, unless the
// course has a mapping made by hand, each with its event, and returns their
// keys in order.
func createDerived(ctx context.Context, tx pgx.Tx, by string) ([]Key, error) {
	created, err := tx.Query(ctx, `WITH ins AS (
			INSERT INTO ctl.course_mapping (instance, course_idnumber, sis_kind, sis_key, academic_year, section, course_year,
				min_reg_status, roles, group_sync, origin, created_by, updated_by)
			SELECT instance, course_idnumber, sis_kind, sis_key, academic_year, section, course_year,
				min_reg_status, roles, group_sync, origin, $1, $1 FROM mim_derived_mapping d
			WHERE NOT EXISTS (SELECT 1 FROM ctl.course_mapping m WHERE m.instance = d.instance
				AND m.course_idnumber = d.course_idnumber AND NOT starts_with(m.origin, 'rule:'))
			ON CONFLICT (instance, course_idnumber, sis_kind, sis_key, academic_year, section, course_year) DO NOTHING
			RETURNING mapping_id, instance, course_idnumber, sis_kind, sis_key, academic_year, section, course_year, roles, min_reg_status, group_sync, origin),
		ev AS (
			INSERT INTO ctl.course_mapping_event (mapping_id, instance, course_idnumber, action, by, detail)
			SELECT mapping_id, instance, course_idnumber, 'create', $1,
				jsonb_build_object('origin', origin, 'mapping', jsonb_build_object('sis_kind', sis_kind, 'sis_key', sis_key,
					'academic_year', academic_year, 'section', section, 'course_year', course_year, 'roles', roles,
					'min_reg_status', min_reg_status, 'group_sync', group_sync, 'active', true))
			FROM ins)
		SELECT instance, course_idnumber, sis_kind, sis_key, academic_year, section, course_year FROM ins
		ORDER BY instance, course_idnumber, sis_kind, sis_key`, by)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(created, func(r pgx.CollectableRow) (Key, error) {
		var k Key
		err := r.Scan(&k.Instance, &k.CourseIDNumber, &k.SISKind, &k.SISKey, &k.AcademicYear, &k.Section, &k.CourseYear)
		return k, err
	})
}

// updateDerived brings the roles, minimum status and group sync of the
// rules' own mappings in line with the rules, each change with its event,
// and returns how many it changed.
func updateDerived(ctx context.Context, tx pgx.Tx, by string) (int, error) {
	tag, err := tx.Exec(ctx, `WITH upd AS (
			UPDATE ctl.course_mapping m SET roles = d.roles, min_reg_status = d.min_reg_status, group_sync = d.group_sync,
				updated_at = now(), updated_by = $1
			FROM mim_derived_mapping d
			WHERE (m.instance, m.course_idnumber, m.sis_kind, m.sis_key, m.academic_year, m.section, m.course_year)
				= (d.instance, d.course_idnumber, d.sis_kind, d.sis_key, d.academic_year, d.section, d.course_year)
			  AND m.origin = d.origin
			  AND (m.roles, m.min_reg_status, m.group_sync) IS DISTINCT FROM (d.roles, d.min_reg_status, d.group_sync)
			RETURNING m.mapping_id, m.instance, m.course_idnumber, m.origin, m.roles, m.min_reg_status, m.group_sync)
		INSERT INTO ctl.course_mapping_event (mapping_id, instance, course_idnumber, action, by, detail)
		SELECT mapping_id, instance, course_idnumber, 'update', $1,
			jsonb_build_object('origin', origin, 'after', jsonb_build_object('roles', roles, 'min_reg_status', min_reg_status, 'group_sync', group_sync))
		FROM upd`, by)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// countManual counts the derived mappings whose course has a mapping made
// by hand (which always wins).
func countManual(ctx context.Context, tx pgx.Tx) (int, error) {
	var n int
	err := tx.QueryRow(ctx, `SELECT count(*) FROM mim_derived_mapping d WHERE EXISTS (SELECT 1 FROM ctl.course_mapping m
		WHERE m.instance = d.instance AND m.course_idnumber = d.course_idnumber AND NOT starts_with(m.origin, 'rule:'))`).Scan(&n)
	return n, err
}

func sortedRoles(roles []string) []string {
	out := slices.Clone(roles)
	slices.Sort(out)
	return slices.Compact(out)
}
