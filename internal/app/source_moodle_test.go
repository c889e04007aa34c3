package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// `mim extract --source moodle:NAME` reads a (simulated) site through the
// real source kind, lands it, and prints the summary.
func TestExtractMoodleSiteThroughTheCommand(t *testing.T) {
	db := pgtest.New(t)
	const token = "cmdtest0123456789abcdef012345678"
	st := moodletest.State{SiteName: "Alpha", Categories: []moodletest.Category{{ID: 2, Name: "Arts", IDNumber: "ART", Visible: true}}}
	for c := int64(10); c < 13; c++ {
		st.Courses = append(st.Courses, moodletest.Course{ID: c, ShortName: fmt.Sprint("C", c), FullName: "Course", CategoryID: 2})
		for u := int64(100); u < 100+c; u++ {
			if c == 10 {
				st.Users = append(st.Users, moodletest.User{ID: u, Username: fmt.Sprint("u", u), FirstName: "A", LastName: "B", Email: "a@example.ac.uk"})
			}
			if u < 110 {
				st.Enrolments = append(st.Enrolments, moodletest.Enrolment{CourseID: c, UserID: u, RoleIDs: []int64{5}})
			}
		}
	}
	site := moodletest.NewServer(t, st, moodletest.WithToken(token))
	cfg := writeConfig(t, "environment: test\nwarehouse: {dsn: \""+db.DSN.Reveal()+"\"}\nmoodle:\n"+
		"  - {name: alpha, url: \""+site.URL()+"\", token: \"${MIM_TEST_MOODLE_TOKEN}\", environment: test, rate_per_second: 1000, concurrency: 4}\n")
	t.Setenv("MIM_TEST_MOODLE_TOKEN", token)

	code, out, errOut := mim(t, "--config", cfg, "--log-level", "debug", "extract", "--source", "moodle:alpha", "--progress", "off")
	if code != 0 {
		t.Fatalf("extract: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"moodle  alpha     enrolments      30   30", "moodle  alpha     users           12   12",
		"moodle  alpha     site_info        1    1", "moodle  alpha     roles            1    1"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, token) {
		t.Error("the token is in the command's output or logs")
	}
	var n int64
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ctl.moodle_site WHERE instance = 'alpha' AND last_run_id IS NOT NULL`).Scan(&n); err != nil || n != 1 {
		t.Errorf("ctl.moodle_site: %d rows, %v", n, err)
	}

	code, out, _ = mim(t, "--config", cfg, "extract", "--source", "moodle:alpha", "--entity", "enrolments", "--progress", "off")
	if code != 0 || !strings.Contains(out, "moodle  alpha     enrolments  30    0        0        0         30       0") {
		t.Errorf("unchanged enrolments: exit %d\n%s", code, out)
	}

	// Grades are off for the site: asking for them is a usage error, before
	// anything is read or recorded.
	calls := site.Calls("")
	code, _, errOut = mim(t, "--config", cfg, "extract", "--source", "moodle:alpha", "--entity", "grades", "--progress", "off")
	if code != 2 || !strings.Contains(errOut, "grades is off for this site") {
		t.Errorf("--entity grades on a site without grades: exit %d\n%s", code, errOut)
	}
	if site.Calls("") != calls {
		t.Error("a refused command still called Moodle")
	}
}
