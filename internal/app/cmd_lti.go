package app

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mimwarehouse/mim/internal/lti"
)

var ltiCommand = Command{
	Name:    "lti",
	Group:   "Operations",
	Summary: "the LTI tool course staff map their courses with: key, registrations, staff changes",
	Usage: `mim lti keygen --out FILE
       mim lti platforms [--instance SITE]
       mim lti register --instance SITE --client-id ID --deployment-id ID[,ID...]
       mim lti revoke --id N
       mim lti changes [--instance SITE] [--course IDNUMBER] [--limit N]`,
	Help: `With lti.url set, mim serve offers Moodle an LTI 1.3 tool under <url>/lti/:
the staff of a course (Moodle's Instructor role, or an administrator) open it
from the course and see which SITS module occurrences, programmes, routes,
departments or faculties feed it, search this year's, and add, change or
remove mappings after a preview of what the next export would do (the same
guards hold: drops past the per-course guard are held for the integration
team; global deactivation and the rollover freeze staff edits). Students see
how their course is fed. Every change is in 'mim mappings history' with the
person's Moodle identity.

keygen writes the tool's RSA key (lti.key_file); the key is never replaced
over an existing file, since every site would have to register again.

A Moodle administrator registers the tool by pasting <url>/lti/register into
Site administration > Plugins > Activity modules > External tool > Manage
tools ("Tool URL", then "Add LTI Advantage"): Moodle and MIM exchange what
they need (LTI Dynamic Registration), for a site listed in lti.sites only.
register records a registration made by hand in Moodle instead (client id and
deployment id as Moodle shows them; Moodle's endpoints are derived from the
site's url). platforms lists registrations; revoke stops one (its launches
are refused and its sessions end).

changes lists what staff previewed and made through the tool.`,
	NoConfig: true,
	Setup: func(fs *flag.FlagSet) Runner {
		out := fs.String("out", "", "keygen: the `FILE` to write the key to")
		instance := fs.String("instance", "", "the Moodle `SITE` (moodle[].name)")
		clientID := fs.String("client-id", "", "register: the client `ID` Moodle gave the tool")
		deployments := fs.String("deployment-id", "", "register: the deployment `ID`s, comma-separated")
		id := fs.Int64("id", 0, "revoke: the registration `N` (mim lti platforms)")
		course := fs.String("course", "", "changes: only this course `IDNUMBER`")
		limit := fs.Int("limit", 50, "changes: at most `N`")
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) != 1 {
				return Usagef("say keygen, platforms, register, revoke or changes")
			}
			switch args[0] {
			case "keygen":
				if *out == "" {
					return Usagef("keygen needs --out FILE")
				}
				if err := lti.WriteKey(*out); err != nil {
					return err
				}
				fmt.Fprintf(e.Stdout, "wrote the LTI tool's key to %s (mode 0600); set lti.key_file to it\n", *out)
				return nil
			case "platforms":
				return ltiPlatforms(ctx, e, *instance)
			case "register":
				return ltiRegister(ctx, e, *instance, *clientID, *deployments)
			case "revoke":
				if *id <= 0 {
					return Usagef("revoke needs --id N (mim lti platforms lists them)")
				}
				pool, err := e.Warehouse(ctx)
				if err != nil {
					return err
				}
				if err := lti.Revoke(ctx, pool, *id); err != nil {
					return err
				}
				fmt.Fprintf(e.Stdout, "revoked LTI registration %d: its launches are refused from now on\n", *id)
				return nil
			case "changes":
				return ltiChanges(ctx, e, *instance, *course, *limit)
			}
			return Usagef("unknown action %q (use keygen, platforms, register, revoke or changes)", args[0])
		}
	},
}

func ltiPlatforms(ctx context.Context, e *Env, instance string) error {
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return err
	}
	ps, err := lti.Platforms(ctx, pool, instance)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSITE\tISSUER\tCLIENT ID\tDEPLOYMENTS\tACTIVE\tREGISTERED\tBY")
	for _, p := range ps {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%v\t%s\t%s\n", p.ID, p.Instance, p.Issuer, p.ClientID, strings.Join(p.DeploymentIDs, ","),
			p.Active, p.RegisteredAt.Local().Format("2006-01-02 15:04"), p.RegisteredBy)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(ps) == 0 {
		fmt.Fprintln(e.Stdout, "no Moodle site has registered the tool yet")
	}
	return nil
}

func ltiRegister(ctx context.Context, e *Env, instance, clientID, deployments string) error {
	cfg, err := e.Config()
	if err != nil {
		return err
	}
	if instance == "" || clientID == "" || deployments == "" {
		return Usagef("register needs --instance SITE, --client-id ID and --deployment-id ID")
	}
	if !slices.Contains(cfg.LTI.Sites, instance) {
		return Usagef("site %q is not in lti.sites (%s)", instance, strings.Join(cfg.LTI.Sites, ", "))
	}
	var issuer string
	for _, m := range cfg.Moodle {
		if m.Name == instance {
			issuer = m.Issuer()
		}
	}
	var deps []string
	for _, d := range strings.Split(deployments, ",") {
		if d = strings.TrimSpace(d); d != "" {
			deps = append(deps, d)
		}
	}
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return err
	}
	p, err := lti.Register(ctx, pool, lti.Platform{Instance: instance, Issuer: issuer, ClientID: clientID, DeploymentIDs: deps,
		AuthURL: issuer + "/mod/lti/auth.php", JWKSURL: issuer + "/mod/lti/certs.php", TokenURL: issuer + "/mod/lti/token.php",
		RegisteredBy: Who()})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "registered %s (issuer %s) as LTI registration %d: client %s, deployments %s\n", p.Instance, p.Issuer, p.ID,
		p.ClientID, strings.Join(p.DeploymentIDs, ", "))
	return nil
}

func ltiChanges(ctx context.Context, e *Env, instance, course string, limit int) error {
	if limit < 1 {
		return Usagef("--limit must be at least 1")
	}
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return err
	}
	rows, err := pool.Query(ctx, `SELECT change_id, created_at, by, instance, course_idnumber, action,
			coalesce(change ->> 'kind', '') || ' ' || coalesce(change ->> 'key', change ->> 'id', ''), status, coalesce(note, '')
		FROM ctl.lti_change WHERE ($1 = '' OR instance = $1) AND ($2 = '' OR course_idnumber = $2)
		ORDER BY change_id DESC LIMIT $3`, instance, course, limit)
	if err != nil {
		return fmt.Errorf("reading the staff changes: %w", err)
	}
	defer rows.Close()
	tw := tabwriter.NewWriter(e.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWHEN\tBY\tSITE\tCOURSE\tACTION\tWHAT\tSTATUS\tNOTE")
	for rows.Next() {
		var id int64
		var at time.Time
		var by, inst, crs, action, what, status, note string
		if err := rows.Scan(&id, &at, &by, &inst, &crs, &action, &what, &status, &note); err != nil {
			return err
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, at.Local().Format("2006-01-02 15:04"), by, inst, crs, action,
			strings.TrimSpace(what), status, note)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return tw.Flush()
}
