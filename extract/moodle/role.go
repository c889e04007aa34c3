package moodle

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// DBRole looks a role up by shortname in a moodle-db site's database
// ({prefix}role): whether the site has it, and its id. Moodle's web services
// list no roles, so this is the one way MIM can see a role that is only
// assigned in user contexts, as the personal-tutor role of enrol_dbuserrel
// is.
func DBRole(ctx context.Context, site *Site, shortname string) (id int64, found bool, err error) {
	if site.Database == nil {
		return 0, false, errors.New("the site has no database configured")
	}
	conn, err := OpenDB(ctx, site.Database.Driver, site.Database.DSN)
	if err != nil {
		return 0, false, err
	}
	defer conn.Close()
	q := &querier{d: dialectOf(site.Database.Driver), prefix: site.Database.Prefix}
	err = conn.QueryRowContext(ctx, q.sql(`SELECT id FROM {role} WHERE shortname = ?`), shortname).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("reading %srole of site %s: %w", site.Database.Prefix, site.Name, err)
	}
	return id, true, nil
}
