package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/export/groupsync/groupsynctest"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/moodle"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

func groupsSite(t *testing.T) *moodletest.Site {
	st := moodletest.State{
		Categories: []moodletest.Category{{ID: 1, Name: "Modules", Visible: true}},
		Courses:    []moodletest.Course{{ID: 14, ShortName: "MOD1234", FullName: "Module 1234", IDNumber: "MOD1234-A7U-T1-2025", CategoryID: 1}},
		Groups: []moodletest.Group{
			{ID: 1, CourseID: 14, Name: "OLD1", IDNumber: "mim:OLD", Members: []int64{101}},
			{ID: 2, CourseID: 14, Name: "SEM1", IDNumber: "mim:A", Members: []int64{101}},
			{ID: 3, CourseID: 14, Name: "Lab team A"},
		},
		Groupings: []moodletest.Grouping{{ID: 1, CourseID: 14, Name: "OLD1", IDNumber: "mim:OLD", Groups: []int64{1}}},
	}
	for u := int64(101); u <= 104; u++ {
		st.Users = append(st.Users, moodletest.User{ID: u, Username: fmt.Sprint("s", u), FirstName: "S", LastName: fmt.Sprint(u), Email: fmt.Sprintf("s%d@example.ac.uk", u)})
		if u <= 103 {
			st.Enrolments = append(st.Enrolments, moodletest.Enrolment{CourseID: 14, UserID: u, RoleIDs: []int64{5}})
		}
	}
	return moodletest.NewServer(t, st)
}

func groupWrites(s *moodletest.Site) int {
	n := 0
	for _, f := range moodle.GroupWriteFunctions {
		n += s.Calls(f)
	}
	return n
}

func TestGroupsCommandAndTheIncidentBothWays(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	sim := groupsSite(t)
	groupsynctest.Fill(t, db.Pool,
		groupsynctest.Group("main", 14, "MOD1234-A7U-T1-2025", "mim:A", "SEM1", 101, 102),
		groupsynctest.Group("main", 14, "MOD1234-A7U-T1-2025", "mim:B", "SEM2", 103, 104),
		groupsynctest.Group("main", 14, "MOD1234-A7U-T1-2025", "mim:C", "Lab team A", 102))
	config := func(deployment, siteEnv string) string {
		return writeConfig(t, fmt.Sprintf(`environment: %s
warehouse: {dsn: "%s"}
moodle:
  - {name: main, url: "%s", token: "%s", environment: %s, rate_per_second: 1000}
`, deployment, db.DSN.Reveal(), sim.URL(), moodletest.DefaultToken, siteEnv))
	}
	staging := config("staging", "staging")

	if code, out, _ := mim(t, "groups", "--help"); code != 0 || !strings.Contains(out, "mim groups plan|apply") || !strings.Contains(out, "migrate --claim") {
		t.Errorf("--help: %d\n%s", code, out)
	}
	if code, _, errOut := mim(t, "--config", staging, "groups"); code != 2 || !strings.Contains(errOut, "say plan, apply or adopt") {
		t.Errorf("no action: %d %s", code, errOut)
	}

	// A course with no desired groups is planned as one MIM leaves alone.
	if code, out, errOut := mim(t, "--config", staging, "groups", "plan", "--course", "999"); code != 0 ||
		!strings.Contains(out, "course 999 has no desired groups") {
		t.Errorf("plan of a course without groups: %d\n%s%s", code, out, errOut)
	}

	// A production warehouse restored into staging: the plan shows the
	// refusal, the apply is refused and writes nothing.
	if _, err := warehouse.Claim(ctx, db.Pool, "production", "restore"); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := mim(t, "--config", staging, "groups", "plan", "--verbose")
	if code != 0 || !strings.Contains(out, "apply would be REFUSED: environment guard") || !strings.Contains(out, "(2) warehouse label") ||
		!strings.Contains(out, "create_group \"SEM2\" (mim:B)") || !strings.Contains(out, "waiting: user 104") ||
		!strings.Contains(out, `group "Lab team A" (mim:C): a group MIM does not own has this name`) {
		t.Errorf("plan: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = mim(t, "--config", staging, "groups", "apply")
	if code != 3 || !strings.Contains(errOut, "(2) warehouse label") || !strings.Contains(errOut, "mim migrate --claim staging") {
		t.Errorf("apply from a restored warehouse: %d\n%s%s", code, out, errOut)
	}
	if n := groupWrites(sim); n != 0 {
		t.Fatalf("%d write requests reached the site", n)
	}

	// A staging deployment whose configuration says the site is production's.
	if code, _, errOut := mim(t, "--config", config("staging", "production"), "groups", "apply"); code != 3 ||
		!strings.Contains(errOut, "(1) site environment") || !strings.Contains(errOut, "(2) warehouse label") {
		t.Errorf("apply to a production site: %d\n%s", code, errOut)
	}
	if n := groupWrites(sim); n != 0 {
		t.Fatalf("%d write requests reached the site", n)
	}

	// The deliberate claim, then the sync goes through.
	if code, out, errOut := mim(t, "--config", staging, "migrate", "--claim", "staging"); code != 0 || !strings.Contains(out, `claimed for environment "staging" (it was "production")`) {
		t.Fatalf("claim: %d\n%s%s", code, out, errOut)
	}
	setting := func(k, v string) {
		if code, _, errOut := mim(t, "--config", staging, "settings", "set", k, v, "--reason", "test"); code != 0 {
			t.Fatalf("settings set %s: %s", k, errOut)
		}
	}
	setting("group_delete_budget_percent", "50") // 1 of the 2 MIM groups goes
	code, out, errOut = mim(t, "--config", staging, "groups", "apply")
	if code != 0 || !strings.Contains(out, "9 of 9 writes applied") || strings.Contains(out, "failed") ||
		!strings.Contains(out, "environment guard passed") || !strings.Contains(out, "delete budget passed: 1 group and 1 grouping deleted, 2 in all (limit 50 deletions); 1 of the 2 groups MIM owns in the courses read (50.0%, limit 50%)") {
		t.Fatalf("apply: %d\n%s%s", code, out, errOut)
	}
	if runs, err := ledger.Recent(context.Background(), db.Pool, 1); err != nil || len(runs) != 1 || runs[0].Command != "groups" ||
		runs[0].Status != ledger.Succeeded || runs[0].ExitCode == nil || *runs[0].ExitCode != 0 {
		t.Errorf("run: %+v (%v)", runs, err)
	}
	before := groupWrites(sim)
	code, out, _ = mim(t, "--config", staging, "groups", "apply", "--instance", "main", "--course", "14")
	if code != 0 || !strings.Contains(out, "0 of 0 writes applied") || groupWrites(sim) != before {
		t.Errorf("second apply: %d\n%s", code, out)
	}
	if code, out, _ := mim(t, "--config", staging, "groups", "plan"); code != 0 || !strings.Contains(out, "no writes") {
		t.Errorf("plan after apply: %d\n%s", code, out)
	}
	if code, _, errOut := mim(t, "--config", staging, "groups", "plan", "--instance", "nope"); code != 2 || !strings.Contains(errOut, "no such site") {
		t.Errorf("unknown site: %d %s", code, errOut)
	}

	// The teacher's "Lab team A" still holds mim:C's name: adopt it.
	if code, _, errOut := mim(t, "--config", staging, "groups", "adopt", "--instance", "main"); code != 2 || !strings.Contains(errOut, "give --instance and --course") {
		t.Errorf("adopt without a course: %d %s", code, errOut)
	}
	code, out, errOut = mim(t, "--config", staging, "groups", "adopt", "--instance", "main", "--course", "14")
	if code != 0 || !strings.Contains(out, `adopt group "Lab team A" (id 3, 0 members) as mim:C`) || !strings.Contains(out, "1 members to add, 0 to remove") ||
		!strings.Contains(out, "nothing written") {
		t.Errorf("adopt: %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := mim(t, "--config", staging, "groups", "adopt", "--instance", "main", "--course", "14", "--apply"); code != 2 || !strings.Contains(errOut, "needs --reason") {
		t.Errorf("adopt --apply without a reason: %d %s", code, errOut)
	}
	code, out, errOut = mim(t, "--config", staging, "groups", "adopt", "--instance", "main", "--course", "14", "--apply", "--reason", "agreed with the module lead")
	if code != 0 || !strings.Contains(out, "adopted 1") {
		t.Errorf("adopt --apply: %d\n%s%s", code, out, errOut)
	}
	code, out, _ = mim(t, "--config", staging, "groups", "apply")
	if code != 0 || strings.Contains(out, "does not own") {
		t.Errorf("apply after adopting: %d\n%s", code, out)
	}
	if got := scalar(t, db.Pool, `SELECT name || ' ' || idnumber || ' ' || reason FROM ctl.group_adoption`); got != "Lab team A mim:C agreed with the module lead" {
		t.Errorf("adoption recorded: %s", got)
	}
}

// The synthetic institution end to end: extract, transform (the real
// mart.exp_group_target), then two applies. The sites end up with exactly
// the manifest's group-sync groups, the stale MIM groups gone, the
// teachers' groups untouched, and the second apply writes nothing.
func TestGroupsSyncTheSyntheticInstitution(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	in, err := synth.Generate(synth.Options{Scale: synth.Small})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Write(ctx, db.Pool, "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := synth.InsertMappings(ctx, db.Pool, in.Mappings, "synth"); err != nil {
		t.Fatal(err)
	}
	var sites strings.Builder
	sims := map[string]*moodletest.Site{}
	for _, s := range in.Sites {
		sims[s.Name] = moodletest.NewServer(t, *s.State)
		fmt.Fprintf(&sites, "  - {name: %s, url: \"%s\", token: \"%s\", environment: test, rate_per_second: 1000}\n",
			s.Name, sims[s.Name].URL(), moodletest.DefaultToken)
	}
	dsn := db.DSN.Reveal()
	cfg := writeConfig(t, fmt.Sprintf(`environment: test
warehouse: {dsn: "%s"}
sources:
  sits: {driver: pgx, dsn: "%s", schema: sismgr}
  cmis: {driver: pgx, dsn: "%s", schema: moodlemgr}
moodle:
%s`, dsn, dsn, dsn, sites.String()))
	for _, args := range [][]string{{"extract", "--progress", "off"}, {"transform"},
		{"settings", "set", "group_delete_budget_percent", "100", "--reason", "the synthetic sites plant stale groups"}} {
		if code, out, errOut := mim(t, append([]string{"--config", cfg}, args...)...); code != 0 {
			t.Fatalf("mim %v: %d\n%s%s", args, code, out, errOut)
		}
	}
	if code, out, errOut := mim(t, "--config", cfg, "groups", "apply"); code != 0 {
		t.Fatalf("apply: %d\n%s%s", code, out, errOut)
	}
	synced := 0
	for _, s := range in.Sites {
		m, _ := in.Manifest.Site(s.Name)
		if m.GroupSyncGroups == 0 {
			continue
		}
		synced++
		mim, teacher := 0, 0
		for _, g := range sims[s.Name].Snapshot().Groups {
			if strings.HasPrefix(g.IDNumber, "mim:") {
				mim++
			} else {
				teacher++
			}
		}
		if mim != m.GroupSyncGroups || teacher != m.TeacherGroups {
			t.Errorf("site %s: %d MIM groups (manifest: %d group-sync groups), %d others (manifest: %d teacher groups)",
				s.Name, mim, m.GroupSyncGroups, teacher, m.TeacherGroups)
		}
	}
	if synced == 0 {
		t.Fatal("the synthetic institution has no group-sync site")
	}
	before := 0
	for _, sim := range sims {
		before += groupWrites(sim)
	}
	code, out, errOut := mim(t, "--config", cfg, "groups", "apply")
	after := 0
	for _, sim := range sims {
		after += groupWrites(sim)
	}
	if code != 0 || after != before || !strings.Contains(out, "0 of 0 writes applied") {
		t.Errorf("second apply: %d, %d write requests\n%s%s", code, after-before, out, errOut)
	}
}
