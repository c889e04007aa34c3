package checks

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/export/tutor"
	moodlex "github.com/mimwarehouse/mim/extract/moodle"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/internal/wire"
)

// Tutor looks at each site's personal-tutor table from
// enrol_dbuserrel's side (export/tutor.Inspect: the view, the login's
// grant) and at the tutor role: a site read from its database is asked
// whether the role exists; a site read through web services can only show
// it when an extract saw it assigned in a course, since Moodle 4.5's web
// services list no roles, so an unseen role is a warning, not a failure.
func Tutor(ctx context.Context, d Deps) []Result {
	cfg, pool := d.Config, d.Pool
	if len(cfg.Moodle) == 0 || pool == nil {
		return nil // without a warehouse, its check says why
	}
	role, err := settings.Text(ctx, pool, "tutor_role")
	if err != nil {
		return []Result{{Target: "tutor", Detail: err.Error()}}
	}
	var out []Result
	for i := range cfg.Moodle {
		site := &cfg.Moodle[i]
		target := "moodle:" + site.Name + " tutor "
		fs, err := tutor.Inspect(ctx, pool, site.Name, site.TutorDBUser)
		if err != nil {
			out = append(out, Result{Target: target + "view", Detail: err.Error()})
			continue
		}
		for _, f := range fs {
			out = append(out, Result{Target: target + f.What, OK: f.OK, Detail: f.Detail})
		}
		out = append(out, tutorRole(ctx, pool, site, role, target+"role"))
	}
	return out
}

func tutorRole(ctx context.Context, pool *pgxpool.Pool, site *config.MoodleSite, role, target string) Result {
	r := Result{Target: target}
	if site.Kind == config.KindMoodleDB {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		id, found, err := moodlex.DBRole(ctx, wire.MoodleSite(site), role)
		switch {
		case err != nil:
			r.Detail = err.Error()
		case !found:
			r.Detail = fmt.Sprintf("the site has no role %q (setting tutor_role): enrol_dbuserrel would skip every row and remove "+
				"every tutor assignment it made; create the role (context type User) or change tutor_role", role)
		default:
			r.OK = true
			r.Detail = fmt.Sprintf("role %q exists on the site (id %d, read from its database)", role, id)
		}
		return r
	}
	id, seen, err := tutor.RoleSeen(ctx, pool, site.Name, role)
	switch {
	case err != nil:
		r.Detail = err.Error()
	case seen:
		r.OK = true
		r.Detail = fmt.Sprintf("role %q is on the site (id %d, seen in its enrolments)", role, id)
	default:
		r.OK, r.Warn = true, true
		r.Detail = fmt.Sprintf("role %q (setting tutor_role) cannot be verified: Moodle's web services list no roles, and no extract saw it "+
			"assigned in a course. Without it enrol_dbuserrel skips every row and removes every tutor assignment it made: check "+
			"Site administration > Users > Define roles (context type User), or read the site from its database (kind: moodle-db) "+
			"so that mim check can", role)
	}
	return r
}
