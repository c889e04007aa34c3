package tutor

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Finding is one thing Inspect found of a site's tutor table, as
// enrol_dbuserrel would meet it.
type Finding struct {
	What   string // "view", "grant"
	OK     bool
	Detail string
}

// Inspect looks at a site's tutor table from enrol_dbuserrel's side. The
// plugin reads a missing view, or one its login may not read, as "0
// entries" and exits 0, so nothing else would say so. It checks that the
// site's view exists and what it holds and, when dbUser (the warehouse
// login of the plugin's dbuser) is given, that the login exists and may log
// in, use the schema and read the view, and may not read the table of
// every site's pairs.
func Inspect(ctx context.Context, q warehouse.Querier, instance, dbUser string) ([]Finding, error) {
	view := ViewName(instance)
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, view).Scan(&exists); err != nil {
		return nil, fmt.Errorf("looking for %s: %w", view, err)
	}
	v := Finding{What: "view"}
	if !exists {
		v.Detail = fmt.Sprintf("%s does not exist: enrol_dbuserrel would read \"0 entries\" and change nothing, silently; "+
			"the site's first tutor publish creates it (mim export --feed tutor --instance %s)", view, instance)
	} else {
		var n int64
		if err := q.QueryRow(ctx, `SELECT count(*) FROM `+view).Scan(&n); err != nil {
			return nil, fmt.Errorf("reading %s: %w", view, err)
		}
		v.OK = true
		v.Detail = fmt.Sprintf("%s holds %d pairs (remoteenroltable); columns role_shortname, tutor_idnumber, student_idnumber", view, n)
	}
	out := []Finding{v}
	if dbUser == "" {
		return out, nil
	}
	g := Finding{What: "grant " + dbUser}
	var canLogin bool
	err := q.QueryRow(ctx, `SELECT rolcanlogin FROM pg_roles WHERE rolname = $1`, dbUser).Scan(&canLogin)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		g.Detail = fmt.Sprintf("the login %s (tutor_db_user) does not exist in the warehouse: CREATE ROLE %s LOGIN PASSWORD '...'", dbUser, dbUser)
		return append(out, g), nil
	case err != nil:
		return nil, fmt.Errorf("looking up the login %s: %w", dbUser, err)
	case !canLogin:
		g.Detail = fmt.Sprintf("the role %s (tutor_db_user) may not log in: ALTER ROLE %s LOGIN", dbUser, dbUser)
		return append(out, g), nil
	}
	var schema, onView, onTable bool
	if err := q.QueryRow(ctx, `SELECT has_schema_privilege($1, 'mim_export', 'USAGE'),
			CASE WHEN to_regclass($2) IS NULL THEN false ELSE has_table_privilege($1, $2, 'SELECT') END,
			has_table_privilege($1, $3, 'SELECT')`, dbUser, view, Table).Scan(&schema, &onView, &onTable); err != nil {
		return nil, fmt.Errorf("reading the grants of %s: %w", dbUser, err)
	}
	switch {
	case onTable:
		g.Detail = fmt.Sprintf("%s may read %s, every site's pairs: give it the site's view only (REVOKE SELECT ON %s FROM %s)",
			dbUser, Table, Table, dbUser)
	case !schema:
		g.Detail = fmt.Sprintf("%s may not use the schema mim_export: the plugin would read \"0 entries\" (GRANT USAGE ON SCHEMA mim_export TO %s)",
			dbUser, dbUser)
	case !exists:
		g.Detail = fmt.Sprintf("%s exists, but there is no view to grant yet (see above)", dbUser)
	case !onView:
		g.Detail = fmt.Sprintf("%s may not read %s: the plugin would read \"0 entries\" (GRANT SELECT ON %s TO %s)", dbUser, view, view, dbUser)
	default:
		g.OK = true
		g.Detail = fmt.Sprintf("%s may read %s and not the table of every site's pairs", dbUser, view)
	}
	return append(out, g), nil
}

// RoleSeen reports whether an extract of the site has seen a role of that
// shortname (stg.moodle_role: roles harvested from course enrolments) and
// its id. Moodle 4.5's web services list no roles, so a role only ever
// assigned in user contexts, as a tutor role is, is not seen this way.
func RoleSeen(ctx context.Context, q warehouse.Querier, instance, shortname string) (id int64, seen bool, err error) {
	var ok bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('stg.moodle_role') IS NOT NULL`).Scan(&ok); err != nil || !ok {
		return 0, false, err
	}
	err = q.QueryRow(ctx, `SELECT role_id FROM stg.moodle_role WHERE instance = $1 AND shortname = $2`, instance, shortname).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("looking for role %s of site %s: %w", shortname, instance, err)
	}
	return id, true, nil
}
