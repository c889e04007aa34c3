package feeds

import (
	"context"
	"testing"

	"github.com/mimwarehouse/mim/export/feeds/feedstest"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

const simToken = "feedsfeedsfeedsfeeds0123456789ab"

// synthSites serves every site of the institution and configures them.
func synthSites(t *testing.T, e *env, in *synth.Institution) map[string]*moodletest.Site {
	t.Helper()
	sims := map[string]*moodletest.Site{}
	e.cfg.Moodle = nil
	for _, s := range in.Sites {
		sim := moodletest.NewServer(t, *s.State, moodletest.WithToken(simToken))
		sims[s.Name] = sim
		e.cfg.Moodle = append(e.cfg.Moodle, config.MoodleSite{Name: s.Name, URL: sim.URL(), Token: simToken,
			Environment: pgtest.Environment, IMSTarget: "moodle-" + s.Name, Concurrency: 4, PageSize: 500,
			Entities: []string{"site_info", "courses", "users", "enrolments", "roles"}})
	}
	return sims
}

// The small institution's IMS file, from a target built by the Manifest's
// rules, applies cleanly on its simulated sites, and the enrolments it was
// missing are there afterwards; drops go out and are applied too.
func TestSynthExportApplyDrift(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in, err := synth.Generate(synth.Options{Scale: synth.Small})
	if err != nil {
		t.Fatal(err)
	}
	sims := synthSites(t, e, in)
	if _, err := synth.InsertMappings(ctx, e.pool, in.Mappings, "test"); err != nil {
		t.Fatal(err)
	}
	var target []feedstest.Membership
	for _, s := range in.Manifest.Sites {
		rows := feedstest.SynthTarget(in, s.Site)
		if len(rows) != s.ActiveMemberships {
			t.Fatalf("site %s: %d target rows, the manifest's ActiveMemberships is %d", s.Site, len(rows), s.ActiveMemberships)
		}
		missing, suspended := feedstest.Drift(sims[s.Site].Snapshot(), rows)
		if missing != s.DriftMissing || suspended != s.DriftSuspended {
			t.Fatalf("site %s before: drift missing %d suspended %d, manifest %d %d", s.Site, missing, suspended, s.DriftMissing, s.DriftSuspended)
		}
		target = append(target, rows...)
	}
	feedstest.FillMemberships(t, e.pool, target)

	x := e.exporter()
	sum := e.export(x, imsOnly())
	if err := sum.Err(); err != nil {
		t.Fatal(err)
	}
	crons := map[string]*moodletest.IMSCron{}
	for _, s := range in.Manifest.Sites {
		crons[s.Site] = sims[s.Site].IMSCron(moodletest.IMSSettings{RestrictTarget: "moodle-" + s.Site, Unenrol: true})
		r := e.result(sum, s.Site, IMS)
		rep, err := crons[s.Site].Run(e.imsPath(s.Site))
		if err != nil {
			t.Fatal(err)
		}
		if s.ActiveMemberships == 0 {
			if r.Status != StatusEmpty || rep.Skipped == "" {
				t.Errorf("site %s has no target: %s, cron %s", s.Site, r.Status, rep)
			}
			continue
		}
		if r.Status != StatusPublished || r.Adds != int64(s.ActiveMemberships) {
			t.Fatalf("site %s: %s adds %d", s.Site, r.Status, r.Adds)
		}
		// Cleanly: every course and user found, every role mapped, nothing dropped.
		if rep.TargetMismatch || rep.UnknownCourses != 0 || rep.UnknownUsers != 0 || rep.RolesSkipped != 0 || rep.Unenrolled != 0 {
			t.Errorf("site %s: the file did not apply cleanly: %s", s.Site, rep)
		}
		if rep.Enrolled != s.DriftMissing || rep.StaySuspended != s.DriftSuspended {
			t.Errorf("site %s: enrolled %d (missing %d), still suspended %d (suspended %d)", s.Site, rep.Enrolled, s.DriftMissing,
				rep.StaySuspended, s.DriftSuspended)
		}
		missing, suspended := feedstest.Drift(sims[s.Site].Snapshot(), feedstest.SynthTarget(in, s.Site))
		// Moodle cannot re-activate a suspended IMS enrolment through the
		// file (docs/formats.md §1.5): that drift stays for a person or web services.
		if missing != 0 || suspended != s.DriftSuspended {
			t.Errorf("site %s after: drift missing %d suspended %d, want 0 and %d", s.Site, missing, suspended, s.DriftSuspended)
		}
	}

	// Nothing changed, and Moodle applied the files: no file, and Moodle
	// skips the one it has.
	e.applied("main", "archive", "dev")
	sum = e.export(x, imsOnly())
	if r := e.result(sum, "main", IMS); r.Status != StatusEmpty {
		t.Errorf("unchanged: %s", r.Status)
	}
	if rep, _ := crons["main"].Run(e.imsPath("main")); rep.Skipped == "" {
		t.Errorf("the unchanged file must be skipped: %s", rep)
	}
	// Three students leave: their drops go out and Moodle unenrols them.
	e.set("course_drop_percent", "100")
	var gone []feedstest.Membership
	kept := target[:0:0]
	for _, m := range target {
		if m.Instance == "main" && len(gone) < 3 && m.UserIDNumber[len(m.UserIDNumber)-1] == '7' {
			gone = append(gone, m)
			continue
		}
		kept = append(kept, m)
	}
	feedstest.FillMemberships(t, e.pool, kept)
	if r := e.result(e.export(x, imsOnly()), "main", IMS); r.Status != StatusPublished || r.Drops != 3 {
		t.Fatalf("drops: %s %d %v", r.Status, r.Drops, r.Err)
	}
	rep, err := crons["main"].Run(e.imsPath("main"))
	if err != nil || rep.Unenrolled+rep.DropsIgnored != 3 {
		t.Fatalf("cron: %v %v", rep, err)
	}
	snap := sims["main"].Snapshot()
	for _, g := range gone {
		if hasIMSEnrolment(snap, g.CourseIDNumber, g.UserIDNumber) {
			t.Errorf("%s is still enrolled by IMS in %s", g.UserIDNumber, g.CourseIDNumber)
		}
	}
	if missing, _ := feedstest.Drift(snap, kept); missing != 0 {
		t.Errorf("drift missing after the drops: %d", missing)
	}
}

func hasIMSEnrolment(st moodletest.State, course, user string) bool {
	var cid, uid int64
	for _, c := range st.Courses {
		if c.IDNumber == course {
			cid = c.ID
		}
	}
	for _, u := range st.Users {
		if u.IDNumber == user {
			uid = u.ID
		}
	}
	for _, en := range st.Enrolments {
		if en.CourseID == cid && en.UserID == uid && en.Method == moodletest.IMSMethod {
			return true
		}
	}
	return false
}
