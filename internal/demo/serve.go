package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/lti"
	"github.com/mimwarehouse/mim/internal/lti/ltitest"
)

// serve keeps the status page, the course staff's tool and the simulators
// up until ctx ends (Ctrl-C), then returns runErr.
func (d *demo) serve(ctx context.Context, ln net.Listener, runErr error) error {
	tool, lines, err := d.lti(ctx, "http://"+ln.Addr().String())
	if err != nil {
		ln.Close()
		return fmt.Errorf("setting up the LTI tool of the demo: %w", err)
	}
	var toolHandler http.Handler
	if tool != nil {
		toolHandler = tool
	}
	srv := &http.Server{Handler: d.h.Handler(toolHandler), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	url := "http://" + ln.Addr().String() + "/"
	for _, l := range lines {
		fmt.Fprintln(d.w, l)
	}
	fmt.Fprintf(d.w, "\nstatus page: %s  (metrics %smetrics, health %shealthz); the simulated sites stay up. Ctrl-C to stop.\n", url, url, url)
	if d.o.Ready != nil {
		d.o.Ready(url)
	}
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return runErr
}

// Demo users of the simulated Moodle's LTI platform.
const (
	ltiTeacher = "9001"
	ltiStudent = "9002"
)

// lti puts the course staff's tool beside the served demo: the first
// site's simulator also serves an LTI platform (ltitest) at its own
// address, the tool (served at base) is registered with it, and a demo
// instructor and student may launch it from the site's busiest mapped
// course. It returns the tool and what to tell the user.
func (d *demo) lti(ctx context.Context, base string) (*lti.Tool, []string, error) {
	if len(d.cfg.Moodle) == 0 {
		return nil, nil, nil
	}
	site := d.cfg.Moodle[0]
	sim := d.sims[site.Name]
	if sim == nil {
		return nil, nil, nil
	}
	platform := ltitest.NewUnstarted()
	sim.Mount("/mod/lti/", platform.Handler())
	sim.Mount("/course/view.php", platform.Handler())
	platform.SetURL(sim.URL())

	tool, err := d.registerTool(ctx, platform, site, base)
	if err != nil {
		return nil, nil, err
	}
	course, idnumber, err := d.ltiCourse(ctx, platform, site.Name)
	if err != nil {
		return nil, nil, err
	}
	lines := []string{
		fmt.Sprintf("course staff's LTI tool, launched from course %s of the simulated site %s:", idnumber, site.Name),
		"  as its instructor, inside the course page: " + platform.CoursePageURL(ltiTeacher, course),
		"  as its instructor, in a window:            " + platform.LaunchPageURL(ltiTeacher, course),
		"  as a student (read-only):                  " + platform.LaunchPageURL(ltiStudent, course),
		"  (a change shows in the next night: mim demo --nights 2 runs two)",
	}
	return tool, lines, nil
}

// registerTool builds the tool for site, served at base, and registers it
// with the platform and the platform with it.
func (d *demo) registerTool(ctx context.Context, platform *ltitest.Platform, site config.MoodleSite, base string) (*lti.Tool, error) {
	key, err := lti.GenerateKey()
	if err != nil {
		return nil, err
	}
	c := *d.cfg
	c.LTI = config.LTI{URL: base, Sites: []string{site.Name}, Session: 30 * time.Minute}
	tool, err := d.h.LTITool(&c, d.pool, lti.Options{Key: key})
	if err != nil {
		return nil, err
	}
	const clientID, deployment = "mim-demo", "1"
	if _, err := lti.Register(ctx, d.pool, lti.Platform{Instance: site.Name, Issuer: site.Issuer(), ClientID: clientID,
		DeploymentIDs: []string{deployment}, AuthURL: platform.AuthURL(), JWKSURL: platform.JWKSURL(), TokenURL: platform.TokenURL(),
		RegisteredBy: "mim demo"}); err != nil {
		return nil, err
	}
	platform.SetTool(ltitest.Tool{ClientID: clientID, DeploymentID: deployment, LoginURL: tool.LoginURL(), LaunchURL: tool.LaunchURL(),
		RedirectURIs: []string{tool.LaunchURL()}, JWKSURL: tool.JWKSURL(), Name: lti.ClientName})
	return tool, nil
}

// ltiCourse puts the site's mapped course with the most published
// memberships on the platform, with a demo instructor and student, and
// returns its Moodle id and idnumber.
func (d *demo) ltiCourse(ctx context.Context, platform *ltitest.Platform, instance string) (course, idnumber string, err error) {
	var id int64
	var short, full string
	err = d.pool.QueryRow(ctx, `SELECT c.course_id, coalesce(c.shortname, ''), coalesce(c.fullname, ''), c.idnumber
		FROM stg.moodle_course c
		WHERE c.instance = $1 AND EXISTS (SELECT 1 FROM ctl.course_mapping m WHERE m.instance = c.instance AND m.course_idnumber = c.idnumber AND m.active)
		ORDER BY (SELECT count(*) FROM ctl.published_membership p WHERE p.instance = c.instance AND p.course_idnumber = c.idnumber) DESC, c.idnumber
		LIMIT 1`, instance).Scan(&id, &short, &full, &idnumber)
	if err != nil {
		return "", "", fmt.Errorf("choosing the LTI demo's course: %w", err)
	}
	course = fmt.Sprint(id)
	platform.AddUser(ltitest.User{ID: ltiTeacher, Username: "demo.teacher", Name: "Dana Teacher", Given: "Dana", Email: "dana.teacher@example.ac.uk"})
	platform.AddUser(ltitest.User{ID: ltiStudent, Username: "demo.student", Name: "Sam Student", Given: "Sam"})
	platform.AddCourse(ltitest.Course{ID: course, ShortName: short, FullName: full, IDNumber: idnumber,
		Roles: map[string]string{ltiTeacher: ltitest.Instructor, ltiStudent: ltitest.Learner}})
	return course, idnumber, nil
}
