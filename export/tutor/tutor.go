// Package tutor publishes the personal-tutor table that enrol_dbuserrel
// reads (docs/formats.md §4). The plugin reads the whole relation and
// removes every assignment it does not find, so a site's rows are replaced
// in one transaction (readers see the old rows or the new ones, never a mix),
// only pairs fit for the plugin are published, and the caller guards the
// new rows like memberships before Publish.
package tutor

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Table is the relation that holds every site's published pairs.
const Table = "mim_export.personal_tutor"

// Mart is the relation the pairs come from (docs/contracts.md §2).
const Mart = "mart.exp_personal_tutor"

var viewSafe = regexp.MustCompile(`^[a-z0-9_]+$`)

// ViewName is the view enrol_dbuserrel of site instance reads (its
// remoteenroltable): mim_export.personal_tutor_<site>, with - written _.
func ViewName(instance string) string {
	return "mim_export.personal_tutor_" + strings.ReplaceAll(instance, "-", "_")
}

// Problem is a mart row that cannot be published.
type Problem struct {
	Role, Tutor, Student string
	Reason               string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s|%s|%s: %s", p.Role, p.Tutor, p.Student, p.Reason)
}

// maxProblems bounds the problems a Plan lists; Invalid counts them all.
const maxProblems = 20

// Plan is a site's new table, loaded but not published, measured against
// the published one.
type Plan struct {
	Instance string
	View     string
	Rows     int64 // pairs in the new table
	Previous int64 // pairs published now
	Added    int64 // pairs new to the table
	Removed  int64 // published pairs the new table drops
	// Invalid counts mart rows left out (an empty value or a |, which is the
	// plugin's key separator); Problems lists the first of them.
	Invalid  int64
	Problems []Problem
}

// Kept is the number of published pairs the new table keeps.
func (p *Plan) Kept() int64 { return p.Previous - p.Removed }

const newTable = "pg_temp.mim_tutor_new"

// Prepare loads the site's pairs from the mart into a temporary table of
// tx and compares them with what is published. It writes nothing else; a
// transaction that is rolled back leaves no trace of it.
func Prepare(ctx context.Context, tx pgx.Tx, instance string) (*Plan, error) {
	if !viewSafe.MatchString(strings.ReplaceAll(instance, "-", "_")) {
		return nil, fmt.Errorf("preparing the tutor table: %q is not a site name", instance)
	}
	p := &Plan{Instance: instance, View: ViewName(instance)}
	if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+newTable); err != nil {
		return nil, fmt.Errorf("preparing the tutor table of site %s: %w", instance, err)
	}
	// One row per pair; the informational columns of duplicates are
	// folded, since the plugin ignores them.
	_, err := tx.Exec(ctx, `CREATE TEMP TABLE mim_tutor_new ON COMMIT DROP AS
		SELECT role_shortname, tutor_idnumber, student_idnumber,
		       min(student_code) AS student_code, min(tutor_upi) AS tutor_upi, min(source) AS source
		FROM `+Mart+`
		WHERE instance = $1
		  AND coalesce(role_shortname, '') <> '' AND coalesce(tutor_idnumber, '') <> '' AND coalesce(student_idnumber, '') <> ''
		  AND position('|' IN role_shortname || tutor_idnumber || student_idnumber) = 0
		GROUP BY 1, 2, 3`, instance)
	if err != nil {
		return nil, fmt.Errorf("loading the tutor pairs of site %s from %s: %w", instance, Mart, err)
	}
	rows, err := tx.Query(ctx, `SELECT coalesce(role_shortname, ''), coalesce(tutor_idnumber, ''), coalesce(student_idnumber, '')
		FROM `+Mart+`
		WHERE instance = $1 AND NOT (
		      coalesce(role_shortname, '') <> '' AND coalesce(tutor_idnumber, '') <> '' AND coalesce(student_idnumber, '') <> ''
		  AND position('|' IN role_shortname || tutor_idnumber || student_idnumber) = 0)
		ORDER BY 1, 2, 3`, instance)
	if err != nil {
		return nil, fmt.Errorf("checking the tutor pairs of site %s: %w", instance, err)
	}
	for rows.Next() {
		var pr Problem
		if err := rows.Scan(&pr.Role, &pr.Tutor, &pr.Student); err != nil {
			rows.Close()
			return nil, fmt.Errorf("checking the tutor pairs of site %s: %w", instance, err)
		}
		p.Invalid++
		if len(p.Problems) < maxProblems {
			pr.Reason = reason(pr)
			p.Problems = append(p.Problems, pr)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("checking the tutor pairs of site %s: %w", instance, err)
	}
	err = tx.QueryRow(ctx, `
		WITH old AS (SELECT role_shortname, tutor_idnumber, student_idnumber FROM `+Table+` WHERE instance = $1),
		     new AS (SELECT role_shortname, tutor_idnumber, student_idnumber FROM `+newTable+`)
		SELECT (SELECT count(*) FROM new), (SELECT count(*) FROM old),
		       (SELECT count(*) FROM (SELECT * FROM new EXCEPT SELECT * FROM old) a),
		       (SELECT count(*) FROM (SELECT * FROM old EXCEPT SELECT * FROM new) r)`, instance).
		Scan(&p.Rows, &p.Previous, &p.Added, &p.Removed)
	if err != nil {
		return nil, fmt.Errorf("comparing the tutor pairs of site %s with the published ones: %w", instance, err)
	}
	return p, nil
}

func reason(p Problem) string {
	switch {
	case p.Role == "":
		return "role_shortname is empty"
	case p.Tutor == "":
		return "tutor_idnumber is empty"
	case p.Student == "":
		return "student_idnumber is empty"
	}
	return "contains |, the plugin's key separator"
}

// Publish replaces the site's published pairs with the prepared ones and
// (re)creates the site's view, inside tx: nothing is visible to Moodle until
// tx commits, and then all of it is. exportID is the ctl.export_run row of
// this publish.
func (p *Plan) Publish(ctx context.Context, tx pgx.Tx, exportID int64) error {
	if _, err := tx.Exec(ctx, `DELETE FROM `+Table+` WHERE instance = $1`, p.Instance); err != nil {
		return fmt.Errorf("publishing the tutor table of site %s: %w", p.Instance, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+Table+` (instance, role_shortname, tutor_idnumber, student_idnumber, student_code, tutor_upi, source, export_id)
		SELECT $1, role_shortname, tutor_idnumber, student_idnumber, student_code, tutor_upi, source, $2 FROM `+newTable,
		p.Instance, exportID); err != nil {
		return fmt.Errorf("publishing the tutor table of site %s: %w", p.Instance, err)
	}
	// The view is created once: replacing it would lock it against
	// Moodle's reads until the transaction ends. The site name is checked
	// in Prepare and quoted here as a literal.
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, p.View).Scan(&exists); err != nil {
		return fmt.Errorf("publishing the tutor table of site %s: %w", p.Instance, err)
	}
	if exists {
		return nil
	}
	view := fmt.Sprintf(`CREATE VIEW %s AS
		SELECT role_shortname, tutor_idnumber, student_idnumber, student_code, tutor_upi, source
		FROM %s WHERE instance = '%s'`, p.View, Table, strings.ReplaceAll(p.Instance, "'", "''"))
	if _, err := tx.Exec(ctx, view); err != nil {
		return fmt.Errorf("publishing the tutor table of site %s: creating view %s: %w", p.Instance, p.View, err)
	}
	if _, err := tx.Exec(ctx, `COMMENT ON VIEW `+p.View+` IS 'Personal tutors of Moodle site `+
		strings.ReplaceAll(p.Instance, "'", "''")+` for enrol_dbuserrel (remoteenroltable); published by mim export'`); err != nil {
		return fmt.Errorf("publishing the tutor table of site %s: %w", p.Instance, err)
	}
	return nil
}

// Published counts the pairs published for instance now.
func Published(ctx context.Context, q warehouse.Querier, instance string) (int64, error) {
	var n int64
	if err := q.QueryRow(ctx, `SELECT count(*) FROM `+Table+` WHERE instance = $1`, instance).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting the published tutor pairs of site %s: %w", instance, err)
	}
	return n, nil
}
