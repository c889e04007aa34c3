package moodletest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/export/ims"
)

// imsSite is a small site: two courses, four users, u3 already enrolled by
// IMS and suspended, u4 enrolled by IMS and active, u2 enrolled manually.
func imsSite(t *testing.T) *Site {
	t.Helper()
	st := State{
		Categories: []Category{{ID: 1, Name: "Misc", Visible: true}},
		Courses: []Course{
			{ID: 10, ShortName: "C1", FullName: "Course 1", IDNumber: "C1", CategoryID: 1, Visible: true},
			{ID: 11, ShortName: "C2", FullName: "Course 2", IDNumber: "C2", CategoryID: 1, Visible: true},
		},
		Users: []User{
			{ID: 101, Username: "u1", FirstName: "U", LastName: "One", IDNumber: "u1"},
			{ID: 102, Username: "u2", FirstName: "U", LastName: "Two", IDNumber: "u2"},
			{ID: 103, Username: "u3", FirstName: "U", LastName: "Three", IDNumber: "u3"},
			{ID: 104, Username: "u4", FirstName: "U", LastName: "Four", IDNumber: "u4"},
		},
		Enrolments: []Enrolment{
			{CourseID: 10, UserID: 102, RoleIDs: []int64{5}, Method: "manual"},
			{CourseID: 10, UserID: 103, RoleIDs: []int64{5}, Method: IMSMethod, Suspended: true},
			{CourseID: 10, UserID: 104, RoleIDs: []int64{5}, Method: IMSMethod},
			{CourseID: 11, UserID: 104, RoleIDs: []int64{5}, Method: IMSMethod},
		},
	}
	s, err := New(st)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func imsFile(t *testing.T, target string, memberships map[string][]ims.Member) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := ims.NewWriter(&buf)
	if err := w.WriteProperties(ims.Properties{Target: target}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"C1", "C2", "NOPE"} {
		if ms, ok := memberships[c]; ok {
			if err := w.WriteMembership(c, ms); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func imsEnrolment(s *Site, course, user int64) *Enrolment {
	for _, e := range s.Enrolments(course) {
		if e.UserID == user && e.Method == IMSMethod {
			return &e
		}
	}
	return nil
}

func TestIMSCronAppliesLikeMoodle(t *testing.T) {
	d := func(y int, m time.Month, day int) ims.Date { return ims.Date{Year: y, Month: m, Day: day} }
	file := imsFile(t, "moodle-main", map[string][]ims.Member{
		"C1": {
			{IDNumber: "u1", RoleType: "01", Active: true, Begin: d(2025, 9, 22), LastDay: d(2026, 1, 16), Cohort: "Group A"},
			// A second role: added to the same enrolment. Its dates must be the
			// same: Moodle rewrites the enrolment's dates with every member.
			{IDNumber: "u1", RoleType: "02", Active: true, Begin: d(2025, 9, 22), LastDay: d(2026, 1, 16)},
			{IDNumber: "u2", RoleType: "01", Active: false}, // manual enrolment: the drop does not touch it
			{IDNumber: "u3", RoleType: "01", Active: true},  // suspended IMS enrolment: stays suspended
			{IDNumber: "u4", RoleType: "01", Active: false}, // dropped
			{IDNumber: "ghost", RoleType: "01", Active: true},
			{IDNumber: "u2", RoleType: "05", Active: true}, // Manager: ignored on a fresh site
		},
		"C2":   {{IDNumber: "u4", RoleType: "01", Active: false}},
		"NOPE": {{IDNumber: "u1", RoleType: "01", Active: true}},
	})
	lon, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	for _, tc := range []struct {
		name     string
		settings IMSSettings
		check    func(t *testing.T, s *Site, r *IMSReport)
	}{
		{"drops off", IMSSettings{RestrictTarget: "moodle-main", Location: lon}, func(t *testing.T, s *Site, r *IMSReport) {
			if r.DropsIgnored != 3 || r.Unenrolled != 0 || imsEnrolment(s, 10, 104) == nil {
				t.Errorf("imsunenrol off must ignore drops: %s", r)
			}
		}},
		{"unenrol", IMSSettings{RestrictTarget: "MOODLE-MAIN", Unenrol: true, Location: lon}, func(t *testing.T, s *Site, r *IMSReport) {
			if r.Unenrolled != 2 || imsEnrolment(s, 10, 104) != nil || imsEnrolment(s, 11, 104) != nil {
				t.Errorf("unenrol action 0 must remove u4's IMS enrolments: %s", r)
			}
			if len(s.Enrolments(10)) == 0 || !hasEnrolment(s, 10, 102, "manual") {
				t.Error("a drop must not touch a manual enrolment")
			}
		}},
		{"suspend", IMSSettings{RestrictTarget: "moodle-main", Unenrol: true, UnenrolAction: IMSSuspend, Location: lon}, func(t *testing.T, s *Site, r *IMSReport) {
			e := imsEnrolment(s, 10, 104)
			if r.Suspended != 2 || e == nil || !e.Suspended {
				t.Errorf("unenrol action 2 must suspend: %s, %+v", r, e)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := imsSite(t)
			r, err := s.IMSCron(tc.settings).Apply(bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			e := imsEnrolment(s, 10, 101)
			if e == nil || e.Suspended {
				t.Fatalf("u1 must be enrolled in C1 by IMS, active: %+v (%s)", e, r)
			}
			// Dates start at midnight in the site's zone; <end> is the day after the last day.
			if want := time.Date(2025, 9, 22, 0, 0, 0, 0, lon).Unix(); e.TimeStart != want {
				t.Errorf("timestart %d, want %d", e.TimeStart, want)
			}
			if want := time.Date(2026, 1, 17, 0, 0, 0, 0, lon).Unix(); e.TimeEnd != want {
				t.Errorf("timeend %d, want %d", e.TimeEnd, want)
			}
			if got := e.RoleIDs; len(got) != 2 {
				t.Errorf("u1's roles in C1: %v, want student and editingteacher", got)
			}
			if e3 := imsEnrolment(s, 10, 103); e3 == nil || !e3.Suspended || r.StaySuspended != 1 {
				t.Errorf("a suspended IMS enrolment must stay suspended: %+v (%s)", e3, r)
			}
			if r.UnknownUsers != 1 || r.UnknownCourses != 1 || r.RolesSkipped != 1 {
				t.Errorf("unknown users %d, courses %d, skipped roles %d; want 1, 1, 1", r.UnknownUsers, r.UnknownCourses, r.RolesSkipped)
			}
			var group *Group
			for _, g := range s.Snapshot().Groups {
				if g.CourseID == 10 && g.Name == "Group A" {
					group = &g
				}
			}
			if group == nil || len(group.Members) != 1 || group.Members[0] != 101 {
				t.Errorf("the cohort must put u1 into group \"Group A\" of C1: %+v", group)
			}
			tc.check(t, s, r)
		})
	}
}

func hasEnrolment(s *Site, course, user int64, method string) bool {
	for _, e := range s.Enrolments(course) {
		if e.UserID == user && e.Method == method {
			return true
		}
	}
	return false
}

func TestIMSCronStopsAtAnotherTarget(t *testing.T) {
	s := imsSite(t)
	file := imsFile(t, "moodle-staging", map[string][]ims.Member{"C1": {{IDNumber: "u1", RoleType: "01", Active: true}}})
	r, err := s.IMSCron(IMSSettings{RestrictTarget: "moodle-main"}).Apply(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if !r.TargetMismatch || r.Enrolled != 0 || imsEnrolment(s, 10, 101) != nil {
		t.Errorf("a file for another target must not be applied: %s", r)
	}
	// Without imsrestricttarget any file is read.
	r, err = s.IMSCron(IMSSettings{}).Apply(bytes.NewReader(file))
	if err != nil || r.Enrolled != 1 {
		t.Errorf("no restriction: enrolled %d, err %v", r.Enrolled, err)
	}
}

func TestIMSCronRereadRule(t *testing.T) {
	s := imsSite(t)
	cron := s.IMSCron(IMSSettings{Unenrol: true})
	path := filepath.Join(t.TempDir(), "imsenterprise-enrol.xml")
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	put := func(b []byte, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	enrolU1 := imsFile(t, "x", map[string][]ims.Member{"C1": {{IDNumber: "u1", RoleType: "01", Active: true}}})
	dropU1 := imsFile(t, "x", map[string][]ims.Member{"C1": {{IDNumber: "u1", RoleType: "01", Active: false}}})

	if r, err := cron.Run(path); err != nil || !strings.Contains(r.Skipped, "no file") {
		t.Fatalf("missing file: %v %v", r, err)
	}
	put(enrolU1, base)
	if r, err := cron.Run(path); err != nil || r.Enrolled != 1 {
		t.Fatalf("first run: %v %v", r, err)
	}
	// The same content again, newer: skipped by its MD5.
	put(enrolU1, base.Add(2*time.Second))
	if r, _ := cron.Run(path); !strings.Contains(r.Skipped, "MD5") {
		t.Fatalf("identical content must be skipped: %v", r)
	}
	// A different file written in the same second is ignored, and
	// remembered: its MD5 and mtime are what the next run compares with.
	put(dropU1, base.Add(2500*time.Millisecond))
	if r, _ := cron.Run(path); !strings.Contains(r.Skipped, "not later") || imsEnrolment(s, 10, 101) == nil {
		t.Fatalf("a file not newer by a whole second must be skipped: %v", r)
	}
	put(dropU1, base.Add(3*time.Second))
	if r, _ := cron.Run(path); !strings.Contains(r.Skipped, "MD5") {
		t.Fatalf("the skipped file's MD5 must be remembered: %v", r)
	}
	// New content, newer: read.
	put(imsFile(t, "y", map[string][]ims.Member{"C1": {{IDNumber: "u1", RoleType: "01", Active: false}}}), base.Add(4*time.Second))
	if r, _ := cron.Run(path); r.Skipped != "" || r.Unenrolled != 1 || imsEnrolment(s, 10, 101) != nil {
		t.Fatalf("a newer, different file must be applied: %v", r)
	}
}

// Moodle reads IMS dates in the site's own time zone, and logs every
// member with status 1 as "Enrolled user", whether or not it was enrolled
// already (seen on a real Moodle 4.5 with \enrol_imsenterprise\task\cron_task).
func TestIMSCronSiteTimeZoneAndLog(t *testing.T) {
	lon, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	st := State{
		TimeZone:   "Europe/London",
		Categories: []Category{{ID: 1, Name: "Misc", Visible: true}},
		Courses:    []Course{{ID: 10, ShortName: "C1", FullName: "Course 1", IDNumber: "C1", CategoryID: 1, Visible: true}},
		Users:      []User{{ID: 101, Username: "u1", FirstName: "U", LastName: "One", IDNumber: "u1"}},
	}
	s, err := New(st)
	if err != nil {
		t.Fatal(err)
	}
	d := ims.Date{Year: 2025, Month: 9, Day: 22}
	file := imsFile(t, "main", map[string][]ims.Member{"C1": {{IDNumber: "u1", RoleType: "01", Active: true, Begin: d}}})
	cron := s.IMSCron(IMSSettings{RestrictTarget: "main"}) // no Location: the site's zone
	for run := 1; run <= 2; run++ {
		r, err := cron.Apply(bytes.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		want := "Enrolled user #101 (u1) to role 01 in course C1"
		if r.Members != 1 || len(r.Log) != 1 || r.Log[0] != want {
			t.Errorf("run %d: %d members, log %q, want one line %q", run, r.Members, r.Log, want)
		}
		if (run == 1) != (r.Enrolled == 1) {
			t.Errorf("run %d: %d new enrolments", run, r.Enrolled)
		}
	}
	e := imsEnrolment(s, 10, 101)
	if want := time.Date(2025, 9, 22, 0, 0, 0, 0, lon).Unix(); e == nil || e.TimeStart != want {
		t.Errorf("start %+v, want midnight in London (%d), not UTC", e, want)
	}
	if !strings.Contains(IMSTask, `enrol_imsenterprise\task\cron_task`) {
		t.Errorf("task %q", IMSTask)
	}
}
