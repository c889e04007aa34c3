package app

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/lti"
	"github.com/mimwarehouse/mim/internal/lti/ltitest"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// Demo users of the simulated Moodle's LTI platform.
const (
	demoTeacher = "9001"
	demoStudent = "9002"
)

// demoLTI puts the course staff's tool beside `mim demo --serve`: the first
// site's simulator also serves an LTI platform (ltitest) at its own
// address, the tool (served at base) is registered with it, and a demo
// instructor and student may launch it from the site's busiest mapped
// course. It returns the tool and what to tell the user.
func demoLTI(ctx context.Context, e *Env, cfg *config.Config, pool *pgxpool.Pool, sims map[string]*moodletest.Site, base string) (http.Handler, []string, error) {
	if len(cfg.Moodle) == 0 {
		return nil, nil, nil
	}
	site := cfg.Moodle[0]
	sim := sims[site.Name]
	if sim == nil {
		return nil, nil, nil
	}
	platform := ltitest.NewUnstarted()
	sim.Mount("/mod/lti/", platform.Handler())
	sim.Mount("/course/view.php", platform.Handler())
	platform.SetURL(sim.URL())

	key, err := lti.GenerateKey()
	if err != nil {
		return nil, nil, err
	}
	c := *cfg
	c.LTI = config.LTI{URL: base, Sites: []string{site.Name}, Session: 30 * time.Minute}
	tool, err := wire.LTIToolWith(&c, pool, e.Logger, lti.Options{Key: key})
	if err != nil {
		return nil, nil, err
	}
	const clientID, deployment = "mim-demo", "1"
	if _, err := lti.Register(ctx, pool, lti.Platform{Instance: site.Name, Issuer: site.Issuer(), ClientID: clientID,
		DeploymentIDs: []string{deployment}, AuthURL: platform.AuthURL(), JWKSURL: platform.JWKSURL(), TokenURL: platform.TokenURL(),
		RegisteredBy: "mim demo"}); err != nil {
		return nil, nil, err
	}
	platform.SetTool(ltitest.Tool{ClientID: clientID, DeploymentID: deployment, LoginURL: tool.LoginURL(), LaunchURL: tool.LaunchURL(),
		RedirectURIs: []string{tool.LaunchURL()}, JWKSURL: tool.JWKSURL(), Name: lti.ClientName})

	var id int64
	var short, full, idnumber string
	err = pool.QueryRow(ctx, `SELECT c.course_id, coalesce(c.shortname, ''), coalesce(c.fullname, ''), c.idnumber
		FROM stg.moodle_course c
		WHERE c.instance = $1 AND EXISTS (SELECT 1 FROM ctl.course_mapping m WHERE m.instance = c.instance AND m.course_idnumber = c.idnumber AND m.active)
		ORDER BY (SELECT count(*) FROM ctl.published_membership p WHERE p.instance = c.instance AND p.course_idnumber = c.idnumber) DESC, c.idnumber
		LIMIT 1`, site.Name).Scan(&id, &short, &full, &idnumber)
	if err != nil {
		return nil, nil, fmt.Errorf("choosing the LTI demo's course: %w", err)
	}
	course := fmt.Sprint(id)
	platform.AddUser(ltitest.User{ID: demoTeacher, Username: "demo.teacher", Name: "Dana Teacher", Given: "Dana", Email: "dana.teacher@example.ac.uk"})
	platform.AddUser(ltitest.User{ID: demoStudent, Username: "demo.student", Name: "Sam Student", Given: "Sam"})
	platform.AddCourse(ltitest.Course{ID: course, ShortName: short, FullName: full, IDNumber: idnumber,
		Roles: map[string]string{demoTeacher: ltitest.Instructor, demoStudent: ltitest.Learner}})
	lines := []string{
		fmt.Sprintf("course staff's LTI tool, launched from course %s of the simulated site %s:", idnumber, site.Name),
		"  as its instructor, inside the course page: " + platform.CoursePageURL(demoTeacher, course),
		"  as its instructor, in a window:            " + platform.LaunchPageURL(demoTeacher, course),
		"  as a student (read-only):                  " + platform.LaunchPageURL(demoStudent, course),
		"  (a change shows in the next night: mim demo --nights 2 runs two)",
	}
	return tool, lines, nil
}
