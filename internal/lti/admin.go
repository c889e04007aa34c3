package lti

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mimwarehouse/mim/internal/warehouse"
)

// ByHand is a registration made by hand in Moodle (`mim lti register`):
// the deployment ids as Moodle shows them, comma-separated, and Moodle's
// endpoints derived from the site's issuer.
func ByHand(instance, issuer, clientID, deployments, by string) Platform {
	var deps []string
	for _, d := range strings.Split(deployments, ",") {
		if d = strings.TrimSpace(d); d != "" {
			deps = append(deps, d)
		}
	}
	return Platform{Instance: instance, Issuer: issuer, ClientID: clientID, DeploymentIDs: deps,
		AuthURL: issuer + "/mod/lti/auth.php", JWKSURL: issuer + "/mod/lti/certs.php", TokenURL: issuer + "/mod/lti/token.php",
		RegisteredBy: by}
}

// WritePlatforms lists registrations as `mim lti platforms` shows them.
func WritePlatforms(w io.Writer, ps []Platform) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSITE\tISSUER\tCLIENT ID\tDEPLOYMENTS\tACTIVE\tREGISTERED\tBY")
	for _, p := range ps {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%v\t%s\t%s\n", p.ID, p.Instance, p.Issuer, p.ClientID, strings.Join(p.DeploymentIDs, ","),
			p.Active, p.RegisteredAt.Local().Format("2006-01-02 15:04"), p.RegisteredBy)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(ps) == 0 {
		fmt.Fprintln(w, "no Moodle site has registered the tool yet")
	}
	return nil
}

// StaffChange is one change course staff asked for through the tool
// (ctl.lti_change), as `mim lti changes` lists it.
type StaffChange struct {
	ID                                         int64
	At                                         time.Time
	By, Instance, Course, Action, What, Status string
	Note                                       string
}

// StaffChanges are the newest staff changes, at most limit, of one site
// and course ("" for any).
func StaffChanges(ctx context.Context, q warehouse.Querier, instance, course string, limit int) ([]StaffChange, error) {
	rows, err := q.Query(ctx, `SELECT change_id, created_at, by, instance, course_idnumber, action,
			coalesce(change ->> 'kind', '') || ' ' || coalesce(change ->> 'key', change ->> 'id', ''), status, coalesce(note, '')
		FROM ctl.lti_change WHERE ($1 = '' OR instance = $1) AND ($2 = '' OR course_idnumber = $2)
		ORDER BY change_id DESC LIMIT $3`, instance, course, limit)
	if err != nil {
		return nil, fmt.Errorf("reading the staff changes: %w", err)
	}
	defer rows.Close()
	var out []StaffChange
	for rows.Next() {
		var c StaffChange
		if err := rows.Scan(&c.ID, &c.At, &c.By, &c.Instance, &c.Course, &c.Action, &c.What, &c.Status, &c.Note); err != nil {
			return nil, err
		}
		c.What = strings.TrimSpace(c.What)
		out = append(out, c)
	}
	return out, rows.Err()
}

// WriteStaffChanges lists staff changes as `mim lti changes` shows them.
func WriteStaffChanges(w io.Writer, cs []StaffChange) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWHEN\tBY\tSITE\tCOURSE\tACTION\tWHAT\tSTATUS\tNOTE")
	for _, c := range cs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.At.Local().Format("2006-01-02 15:04"), c.By, c.Instance, c.Course,
			c.Action, c.What, c.Status, c.Note)
	}
	return tw.Flush()
}
