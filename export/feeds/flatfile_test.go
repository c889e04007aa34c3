package feeds

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/export/feeds/feedstest"
	"github.com/mimwarehouse/mim/export/flatfile"
	"github.com/mimwarehouse/mim/internal/config"
)

// A flat-file site gets the IMS feed's delta, guards and published state
// as enrol_flatfile lines, and a file Moodle has not read yet is never
// overwritten: its changes wait, whole, for the next file.
func TestFlatfileFromTheSameDeltaAndGuards(t *testing.T) {
	e := newEnv(t)
	e.cfg.Moodle[0].EnrolmentFeed = config.EnrolmentFlatfile
	e.cfg.Moodle[0].Timezone = "Europe/London"
	path := filepath.Join(e.dir, FlatfileName("main"))
	course := "GEOG0012-A6U-T1-2025"
	target := append(students("main", course, "2100", 8),
		feedstest.Membership{Instance: "main", CourseIDNumber: course, UserIDNumber: "S004211", RoleType: "editingteacher", Status: 1},
		feedstest.Membership{Instance: "main", CourseIDNumber: "ECON0001-A6U-T1-2025", UserIDNumber: "21009999", RoleType: "student", Status: 1,
			Begin: day("2025-09-22"), LastDay: day("2026-01-16")})
	feedstest.FillMemberships(t, e.pool, target)
	x := e.exporter()

	// Without --feed, a flat-file site gets no IMS result at all.
	sum := e.export(x, Options{Feeds: nil, DryRun: true})
	for _, r := range sum.Results {
		if r.Feed == IMS {
			t.Errorf("an IMS result for a flat-file site: %+v", r)
		}
	}
	sum = e.export(x, Options{Feeds: []Feed{Flatfile, IMS}})
	r := e.result(sum, "main", Flatfile)
	if r.Status != StatusPublished || r.Adds != 10 || sum.Err() != nil {
		t.Fatalf("first export: %s adds %d %v %v", r.Status, r.Adds, r.Err, r.Notes)
	}
	if ims := e.result(sum, "main", IMS); ims.Status != StatusSkipped {
		t.Errorf("asked for, IMS is skipped for a flat-file site: %s", ims.Status)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	// Dates are the site's midnights: 22 September 2025 00:00 BST, and the
	// start of the day after the last day, 17 January 2026 00:00 GMT.
	for _, want := range []string{
		"add,student,2100001,GEOG0012-A6U-T1-2025\n",
		"add,editingteacher,S004211,GEOG0012-A6U-T1-2025\n",
		"add,student,21009999,ECON0001-A6U-T1-2025,1758495600,1768608000\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the file lacks %q:\n%s", want, text)
		}
	}
	if st, err := flatfile.Validate(strings.NewReader(text)); err != nil || st.Adds != 10 {
		t.Errorf("validate: %+v %v", st, err)
	}
	if n := len(e.published("main")); n != 10 {
		t.Errorf("%d published memberships, want 10", n)
	}

	// Two students leave, but Moodle has not read the file yet: nothing is
	// written and nothing is recorded as told.
	feedstest.FillMemberships(t, e.pool, target[2:])
	sum = e.export(x, Options{Feeds: []Feed{Flatfile}})
	r = e.result(sum, "main", Flatfile)
	var unread *UnreadError
	if r.Status != StatusFailed || !errors.As(r.Err, &unread) {
		t.Fatalf("unread file: %s %v", r.Status, r.Err)
	}
	if after, _ := os.ReadFile(path); string(after) != text {
		t.Error("the unread file was overwritten")
	}
	if n := len(e.published("main")); n != 10 {
		t.Errorf("%d published memberships after the refusal, want 10", n)
	}

	// Moodle's task reads and deletes it, and applies it (an extract shows
	// it): the next export carries the drops.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	e.applied("main")
	sum = e.export(x, Options{Feeds: []Feed{Flatfile}})
	r = e.result(sum, "main", Flatfile)
	if r.Status != StatusPublished || r.Drops != 2 || r.Adds != 0 {
		t.Fatalf("after Moodle read the file: %s adds %d drops %d %v", r.Status, r.Adds, r.Drops, r.Err)
	}
	data, _ = os.ReadFile(path)
	if got := string(data); got != "del,student,2100001,GEOG0012-A6U-T1-2025\ndel,student,2100002,GEOG0012-A6U-T1-2025\n" {
		t.Errorf("delta file:\n%s", got)
	}

	// The IMS feed's threshold guards the flat file too: most of the
	// students gone is refused, and nothing is written.
	os.Remove(path)
	feedstest.FillMemberships(t, e.pool, target[8:])
	sum = e.export(x, Options{Feeds: []Feed{Flatfile}})
	if r := e.result(sum, "main", Flatfile); r.Status != StatusRefused {
		t.Errorf("a drop past threshold_percent: %s %v", r.Status, r.Decisions)
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("a refused feed wrote a file")
	}
}
