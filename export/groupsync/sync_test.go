package groupsync_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/export/groupsync"
	"github.com/mimwarehouse/mim/export/groupsync/groupsynctest"
	"github.com/mimwarehouse/mim/internal/envguard"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/moodle"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// state is a small site: courses 14 and 15, users 101-112 (111 and 112
// enrolled nowhere). Course 14 has a MIM group that drifted (mim:A, with
// 110 who should not be there and without 103), a stale MIM group and
// grouping (mim:OLD), and a teacher's group "Lab team A" in a teacher's
// grouping.
func state() moodletest.State {
	st := moodletest.State{
		SiteName:   "Simulated UCL Moodle",
		Categories: []moodletest.Category{{ID: 1, Name: "Modules", Visible: true}},
		Courses: []moodletest.Course{
			{ID: 14, ShortName: "MOD1234", FullName: "Module 1234", IDNumber: "MOD1234-A7U-T1-2025", CategoryID: 1, Visible: true},
			{ID: 15, ShortName: "MOD5678", FullName: "Module 5678", IDNumber: "MOD5678-A7U-T1-2025", CategoryID: 1, Visible: true},
		},
		Groups: []moodletest.Group{
			{ID: 1, CourseID: 14, Name: "SEM1", IDNumber: "mim:A", Members: []int64{101, 102, 110}},
			{ID: 2, CourseID: 14, Name: "OLD1", IDNumber: "mim:OLD", Members: []int64{103}},
			{ID: 3, CourseID: 14, Name: "Lab team A", Members: []int64{104, 105}},
		},
		Groupings: []moodletest.Grouping{
			{ID: 1, CourseID: 14, Name: "SEM1", IDNumber: "mim:A", Groups: []int64{1}},
			{ID: 2, CourseID: 14, Name: "OLD1", IDNumber: "mim:OLD", Groups: []int64{2}},
			{ID: 3, CourseID: 14, Name: "Teacher set", Groups: []int64{3}},
		},
	}
	for u := int64(101); u <= 112; u++ {
		st.Users = append(st.Users, moodletest.User{ID: u, Username: fmt.Sprint("s", u), FirstName: "Stu", LastName: fmt.Sprint("Dent", u),
			Email: fmt.Sprintf("s%d@example.ac.uk", u), IDNumber: fmt.Sprint("u", u)})
		if u <= 110 {
			st.Enrolments = append(st.Enrolments, moodletest.Enrolment{CourseID: 14, UserID: u, RoleIDs: []int64{5}})
		}
		if u <= 105 {
			st.Enrolments = append(st.Enrolments, moodletest.Enrolment{CourseID: 15, UserID: u, RoleIDs: []int64{5}})
		}
	}
	return st
}

// target is what CMIS wants: mim:A with 101-103; mim:B with 104-106 and
// 111 (not enrolled: waiting); mim:C named like the teacher's group (a
// conflict); in course 15 mim:D with 101-102 and an empty mim:E.
func target(t *testing.T, pool *pgxpool.Pool) {
	const c14, c15 = "MOD1234-A7U-T1-2025", "MOD5678-A7U-T1-2025"
	groupsynctest.Fill(t, pool,
		groupsynctest.Group("main", 14, c14, "mim:A", "SEM1", 101, 102, 103),
		groupsynctest.Group("main", 14, c14, "mim:B", "SEM2", 104, 105, 106, 111),
		groupsynctest.Group("main", 14, c14, "mim:C", "Lab team A", 107),
		groupsynctest.Group("main", 15, c15, "mim:D", "TUT1", 101, 102),
		groupsynctest.Group("main", 15, c15, "mim:E", "TUT2"),
		// Another site's rows are not this site's business.
		groupsynctest.Group("archive", 14, c14, "mim:Z", "Z"),
	)
}

type env struct {
	db   *pgtest.DB
	sim  *moodletest.Site
	site *groupsync.Site
}

func setup(t *testing.T, opts ...moodletest.Option) *env {
	t.Helper()
	e := &env{db: pgtest.New(t), sim: moodletest.NewServer(t, state(), opts...)}
	e.site = &groupsync.Site{Name: "main", URL: e.sim.URL(),
		Environment: pgtest.Environment, GroupPrefix: "mim:", Concurrency: 2, PageSize: 4}
	target(t, e.db.Pool)
	// The fixture deletes 1 of the 2 MIM groups it reads (50%).
	setSetting(t, e.db.Pool, groupsync.SettingBudgetPercent, "50")
	return e
}

func setSetting(t *testing.T, pool *pgxpool.Pool, key, value string) {
	t.Helper()
	if _, err := settings.Set(context.Background(), pool, key, value, "test", "test "+key, nil); err != nil {
		t.Fatal(err)
	}
}

func (e *env) client(t *testing.T, opts ...moodle.Option) *moodle.Client {
	t.Helper()
	c, err := moodle.New("main", e.site.URL, moodletest.DefaultToken,
		append([]moodle.Option{moodle.WithBatchSize(groupsync.BatchSize), moodle.WithRate(0), moodle.WithRetries(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sync runs one `groups apply` of the site as its own ledger run, as the
// command does, with the deployment labelled deployEnv.
func (e *env) sync(t *testing.T, deployEnv string, c *moodle.Client) (*groupsync.Report, error) {
	t.Helper()
	ctx := context.Background()
	run, err := ledger.Begin(ctx, e.db.Pool, "groups", deployEnv, "test", []string{"groups", "apply"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := groupsync.Sync(ctx, e.db.Pool, c, envguard.New(deployEnv, e.db.Pool),
		groupsync.Options{Site: e.site, Run: run, By: "tester"})
	_ = run.Finish(ctx, ledger.Outcome(err), 0, err)
	return rep, err
}

// writes counts the write requests the site received.
func writes(s *moodletest.Site) int {
	n := 0
	for _, f := range moodle.GroupWriteFunctions {
		n += s.Calls(f)
	}
	return n
}

// groups describes the site's groups of a course: "name idnumber [members] in groupings".
func groups(s *moodletest.Site, course int64) []string {
	st := s.Snapshot()
	var out []string
	for _, g := range st.Groups {
		if g.CourseID != course {
			continue
		}
		var in []string
		for _, gg := range st.Groupings {
			if slices.Contains(gg.Groups, g.ID) {
				in = append(in, gg.Name)
			}
		}
		out = append(out, fmt.Sprintf("%s %s %v in %v", g.Name, g.IDNumber, g.Members, in))
	}
	slices.Sort(out)
	return out
}

func groupings(s *moodletest.Site, course int64) []string {
	var out []string
	for _, gg := range s.Snapshot().Groupings {
		if gg.CourseID == course {
			out = append(out, gg.Name+" "+gg.IDNumber)
		}
	}
	slices.Sort(out)
	return out
}

func scalar[T any](t *testing.T, pool *pgxpool.Pool, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// lastStep is the groups step of the last groups run.
func lastStep(t *testing.T, pool *pgxpool.Pool) ledger.StepSummary {
	t.Helper()
	ctx := context.Background()
	run, err := ledger.LastRun(ctx, pool, "groups")
	if err != nil {
		t.Fatal(err)
	}
	steps, err := ledger.Steps(ctx, pool, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if s.Key.Stage == "groups" {
			return s
		}
	}
	t.Fatalf("run %d has no groups step", run.ID)
	return ledger.StepSummary{}
}

var (
	want14 = []string{
		"Lab team A  [104 105] in [Teacher set]",
		"SEM1 mim:A [101 102 103] in [SEM1]",
		"SEM2 mim:B [104 105 106] in [SEM2]",
	}
	want15 = []string{"TUT1 mim:D [101 102] in [TUT1]", "TUT2 mim:E [] in [TUT2]"}
)

func TestApplyReachesTheTargetAndTwiceIsANoOp(t *testing.T) {
	e := setup(t)
	rep, err := e.sync(t, pgtest.Environment, e.client(t))
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if got := groups(e.sim, 14); !slices.Equal(got, want14) {
		t.Errorf("course 14:\n got  %q\n want %q", got, want14)
	}
	if got := groups(e.sim, 15); !slices.Equal(got, want15) {
		t.Errorf("course 15:\n got  %q\n want %q", got, want15)
	}
	if got := groupings(e.sim, 14); !slices.Equal(got, []string{"SEM1 mim:A", "SEM2 mim:B", "Teacher set "}) {
		t.Errorf("course 14 groupings: %q", got)
	}
	p := rep.Plan
	if p.Waiting() != 1 || p.Conflicts() != 1 || p.OwnedGroups != 2 || rep.BudgetDecision != groupsync.BudgetPassed {
		t.Errorf("plan: waiting %d, conflicts %d, owned %d, budget %q", p.Waiting(), p.Conflicts(), p.OwnedGroups, rep.BudgetDecision)
	}
	planned := p.Counts()
	if planned[groupsync.CreateGroup] != 3 || planned[groupsync.AddMember] != 6 || planned[groupsync.RemoveMember] != 1 ||
		planned[groupsync.DeleteGroup] != 1 || planned[groupsync.DeleteGrouping] != 1 || planned[groupsync.Assign] != 3 {
		t.Errorf("planned: %v", planned)
	}
	if n := rep.Result.Total(groupsync.Applied); n != p.Writes() || n != len(rep.Result.Actions) {
		t.Errorf("applied %d of %d planned", n, p.Writes())
	}

	// Everything applied is recorded, with Moodle's answer for creates.
	pool := e.db.Pool
	if n := scalar[int64](t, pool, `SELECT count(*) FROM ctl.group_sync_action WHERE outcome = 'applied'`); n != int64(p.Writes()) {
		t.Errorf("%d actions recorded, %d applied", n, p.Writes())
	}
	if got := scalar[string](t, pool, `SELECT answer->>'idnumber' || ' ' || group_id FROM ctl.group_sync_action
		WHERE action = 'create_group' AND idnumber = 'mim:B'`); !strings.HasPrefix(got, "mim:B ") {
		t.Errorf("create answer: %q", got)
	}
	if got := scalar[string](t, pool, `SELECT status || ' ' || budget_decision || ' ' || waiting || ' ' || conflicts || ' ' || (planned->>'add_member')
		FROM ctl.group_sync_apply`); got != "succeeded passed 1 1 6" {
		t.Errorf("apply record: %q", got)
	}
	if st := lastStep(t, pool); st.Key.Instance != "main" || fmt.Sprintf("%s %d %d", st.Status, st.Counts.In, st.Counts.Errors) != fmt.Sprintf("succeeded %d 0", p.Writes()) {
		got := fmt.Sprintf("%s %s %d %d", st.Key.Instance, st.Status, st.Counts.In, st.Counts.Errors)
		t.Errorf("ledger step: %q", got)
	}

	// Again: nothing to write, and nothing written.
	before := writes(e.sim)
	rep, err = e.sync(t, pgtest.Environment, e.client(t))
	if err != nil || rep.Plan.Writes() != 0 || writes(e.sim) != before {
		t.Fatalf("second apply: err %v, %d planned, %d write requests", err, rep.Plan.Writes(), writes(e.sim)-before)
	}
	if rep.Plan.Waiting() != 1 || rep.BudgetDecision != "" {
		t.Errorf("second apply: waiting %d, budget %q", rep.Plan.Waiting(), rep.BudgetDecision)
	}
	// The waiting member joins once enrolled, without a loop in between.
	if err := e.sim.Enrol(moodletest.Enrolment{CourseID: 14, UserID: 111, RoleIDs: []int64{5}}); err != nil {
		t.Fatal(err)
	}
	rep, err = e.sync(t, pgtest.Environment, e.client(t))
	if err != nil || rep.Plan.Writes() != 1 || rep.Plan.Count(groupsync.AddMember) != 1 || e.sim.Calls("core_group_add_group_members") != 2 {
		t.Errorf("after the enrolment: %v, %d writes", err, rep.Plan.Writes())
	}
}

// The incident of seed 001, first way: a staging MIM whose configuration
// points at production. Not one write request may reach the site, however
// much the plan would delete.
func TestIncidentStagingDeploymentPointedAtProduction(t *testing.T) {
	for _, tc := range []struct {
		name    string
		siteEnv string
		live    string // the siteurl the site reports; "" its own URL
		failed  []envguard.Check
	}{
		{"the site is production's in the configuration", "production", "", []envguard.Check{envguard.SiteEnvironment}},
		{"the configuration calls production's URL staging", "staging", "https://moodle.ucl.ac.uk", []envguard.Check{envguard.LiveSiteURL}},
		{"both", "production", "https://moodle.ucl.ac.uk", []envguard.Check{envguard.SiteEnvironment, envguard.LiveSiteURL}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			if tc.live != "" {
				e.sim.SetSiteURL(tc.live)
			}
			if _, err := warehouse.Claim(context.Background(), e.db.Pool, "staging", "test"); err != nil {
				t.Fatal(err)
			}
			// The staging warehouse's target would delete every MIM group.
			groupsynctest.Fill(t, e.db.Pool, groupsynctest.Group("main", 14, "MOD1234-A7U-T1-2025", "mim:NEW", "New"))
			setSetting(t, e.db.Pool, groupsync.SettingBudgetOverride, "true")
			e.site.Environment = tc.siteEnv
			before := e.sim.Snapshot()
			_, err := e.sync(t, "staging", e.client(t))
			var re *envguard.RefusedError
			if !errors.As(err, &re) || len(re.Failures) != len(tc.failed) {
				t.Fatalf("want a refusal of %v, got %v", tc.failed, err)
			}
			for _, c := range tc.failed {
				if !re.Failed(c) {
					t.Errorf("(%d) %s not named: %v", c, c, err)
				}
			}
			if n := writes(e.sim); n != 0 {
				t.Errorf("%d write requests reached the site", n)
			}
			if e.sim.Calls("") != e.sim.Calls("core_webservice_get_site_info") {
				t.Errorf("the refused sync read more than the site info: %d requests", e.sim.Calls(""))
			}
			if after := e.sim.Snapshot(); len(after.Groups) != len(before.Groups) || len(after.Groupings) != len(before.Groupings) {
				t.Error("the site changed")
			}
			if got := scalar[string](t, e.db.Pool, `SELECT decision FROM ctl.guard_event WHERE guard = 'environment'`); got != "refused" {
				t.Errorf("guard_event: %q", got)
			}
			if got := lastStep(t, e.db.Pool).Status; got != "refused" {
				t.Errorf("ledger step: %q", got)
			}
			if on, _ := settings.Bool(context.Background(), e.db.Pool, groupsync.SettingBudgetOverride); !on {
				t.Error("a refused sync spent the delete override")
			}
		})
	}
}

// The incident, second way: a production warehouse restored into staging,
// used by a staging deployment against staging's own Moodle. Its label
// blocks writes until someone claims it deliberately.
func TestIncidentRestoredProductionDatabaseInStaging(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	if _, err := warehouse.Claim(ctx, e.db.Pool, "production", "restore from the 26/11 backup"); err != nil {
		t.Fatal(err)
	}
	e.site.Environment = "staging"
	_, err := e.sync(t, "staging", e.client(t))
	var re *envguard.RefusedError
	if !errors.As(err, &re) || len(re.Failures) != 1 || !re.Failed(envguard.WarehouseLabel) || !strings.Contains(err.Error(), "mim migrate --claim staging") {
		t.Fatalf("want a refusal of the warehouse label, got %v", err)
	}
	if n := writes(e.sim); n != 0 {
		t.Fatalf("%d write requests reached the site", n)
	}
	// The deliberate act: the warehouse now belongs to staging.
	if _, err := warehouse.Claim(ctx, e.db.Pool, "staging", "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sync(t, "staging", e.client(t)); err != nil {
		t.Fatalf("after the claim: %v", err)
	}
	if got := groups(e.sim, 14); !slices.Equal(got, want14) {
		t.Errorf("course 14 after the claim: %q", got)
	}
}

func TestABatchWithOneBadMemberAddsTheOthers(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	c := e.client(t)
	p, err := groupsync.BuildPlan(ctx, e.db.Pool, c, groupsync.Options{Site: e.site})
	if err != nil {
		t.Fatal(err)
	}
	// 105 leaves the course between the read and the write.
	if !e.sim.Unenrol(14, 105, "manual") {
		t.Fatal("unenrol")
	}
	permit, _, err := envguard.New(pgtest.Environment, e.db.Pool).WebServices(ctx, e.site.Guard(), c)
	if err != nil {
		t.Fatal(err)
	}
	var recorded int
	res, err := groupsync.Apply(ctx, c, permit, p, groupsync.ApplyOptions{Record: func(_ context.Context, acts []groupsync.Action) error {
		recorded += len(acts)
		return nil
	}})
	var pe *groupsync.PartialError
	if !errors.As(err, &pe) || pe.Failed != 1 || pe.NotAttempted != 0 {
		t.Fatalf("want one failed item, got %v", err)
	}
	if recorded != len(res.Actions) {
		t.Errorf("recorded %d of %d actions", recorded, len(res.Actions))
	}
	var bad []groupsync.Action
	for _, a := range res.Actions {
		if a.Outcome != groupsync.Applied {
			bad = append(bad, a)
		}
	}
	if len(bad) != 1 || bad[0].Kind != groupsync.AddMember || bad[0].User.UserID != 105 ||
		!strings.Contains(bad[0].Error, "Only enrolled users may be members of groups") {
		t.Fatalf("failed: %+v", bad)
	}
	if got := groups(e.sim, 14); !slices.Contains(got, "SEM2 mim:B [104 106] in [SEM2]") || !slices.Contains(got, "SEM1 mim:A [101 102 103] in [SEM1]") {
		t.Errorf("the others were not all added: %q", got)
	}
	// All six adds went in one batch; isolating the bad one took more requests.
	if n := e.sim.Calls("core_group_add_group_members"); n < 3 {
		t.Errorf("add_group_members requests: %d, want the batch and its bisection", n)
	}
}

func TestDeleteBudgetRefusesThenAnOverrideLetsOneSyncThrough(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	pool := e.db.Pool
	setSetting(t, pool, groupsync.SettingBudget, "1") // the plan deletes a group and a grouping: 2

	_, err := e.sync(t, pgtest.Environment, e.client(t))
	var be *groupsync.BudgetError
	if !errors.As(err, &be) || be.ExitCode() != 3 || be.Budget.Deletes() != 2 || !strings.Contains(err.Error(), "more than group_delete_budget 1") {
		t.Fatalf("want a budget refusal, got %v", err)
	}
	if n := writes(e.sim); n != 0 {
		t.Fatalf("a refused plan wrote %d requests", n)
	}
	if got := scalar[string](t, pool, `SELECT decision || ' ' || current || ' ' || previous FROM ctl.guard_event WHERE guard = 'group_delete_budget'`); got != "refused 2 2" {
		t.Errorf("guard_event: %q", got)
	}
	if got := scalar[string](t, pool, `SELECT status || ' ' || budget_decision FROM ctl.group_sync_apply`); got != "refused refused" {
		t.Errorf("apply record: %q", got)
	}

	// The share alone refuses too: 1 of 2 MIM groups is 50%.
	setSetting(t, pool, groupsync.SettingBudget, "50")
	setSetting(t, pool, groupsync.SettingBudgetPercent, "49")
	if _, err := e.sync(t, pgtest.Environment, e.client(t)); !errors.As(err, &be) || !strings.Contains(err.Error(), "(50.0%), more than group_delete_budget_percent 49%") {
		t.Fatalf("want a share refusal, got %v", err)
	}

	// The override lets one sync through and is spent by it.
	setSetting(t, pool, groupsync.SettingBudgetOverride, "true")
	rep, err := e.sync(t, pgtest.Environment, e.client(t))
	if err != nil || rep.BudgetDecision != groupsync.BudgetOverridden {
		t.Fatalf("with the override: %v %q", err, rep.BudgetDecision)
	}
	if got := groups(e.sim, 14); !slices.Equal(got, want14) {
		t.Errorf("course 14: %q", got)
	}
	if on, _ := settings.Bool(ctx, pool, groupsync.SettingBudgetOverride); on {
		t.Error("the override was not reset")
	}
	if got := scalar[string](t, pool, `SELECT h.reason FROM ctl.settings_history h JOIN ctl.group_sync_apply a USING (run_id)
		WHERE h.key = 'group_delete_override' AND h.new_value = 'false' AND a.budget_decision = 'overridden'`); !strings.Contains(got, "one-shot override used by run") {
		t.Errorf("the reset is not tied to the apply's run: %q", got)
	}

	// Spent: the next over-budget plan is refused again.
	groupsynctest.Fill(t, pool, groupsynctest.Group("main", 15, "MOD5678-A7U-T1-2025", "mim:D", "TUT1", 101, 102))
	before := writes(e.sim)
	if _, err := e.sync(t, pgtest.Environment, e.client(t)); !errors.As(err, &be) {
		t.Fatalf("after the override was spent: %v", err)
	}
	if writes(e.sim) != before {
		t.Error("the refused sync wrote")
	}
}

// A transient failure in the middle of an apply: the groups' creation
// reaches Moodle but its answer is cut off. MIM does not know the ids, so
// it adds no members; the next apply reads the groups back by idnumber and
// completes, and the one after has nothing to do.
func TestTransientFailureMidApplyIsCompletedByTheNextApply(t *testing.T) {
	e := setup(t)
	e.sim.Inject(moodletest.Fault{Function: "core_group_create_groups", Times: 1, Truncate: 40})
	rep, err := e.sync(t, pgtest.Environment, e.client(t))
	var pe *groupsync.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("want a partial apply, got %v", err)
	}
	res := rep.Result
	if res.Count(groupsync.CreateGroup, groupsync.Failed) != 3 || res.Count(groupsync.AddMember, groupsync.NotAttempted) != 5 ||
		res.Count(groupsync.RemoveMember, groupsync.Applied) != 1 || res.Count(groupsync.DeleteGroup, groupsync.Applied) != 1 {
		t.Errorf("first apply:\n%s", text(res))
	}
	if n := scalar[int64](t, e.db.Pool, `SELECT count(*) FROM ctl.group_sync_action WHERE group_id IS NULL AND action IN ('add_member', 'assign')`); n == 0 {
		t.Error("the members not attempted are not recorded")
	}
	if got := lastStep(t, e.db.Pool).Status; got != "partial" {
		t.Errorf("ledger step: %q", got)
	}

	creates := e.sim.Calls("core_group_create_groups")
	rep, err = e.sync(t, pgtest.Environment, e.client(t))
	if err != nil {
		t.Fatalf("second apply: %v", err)
	}
	if e.sim.Calls("core_group_create_groups") != creates || rep.Plan.Count(groupsync.CreateGroup) != 0 {
		t.Error("the second apply created groups again")
	}
	if got := groups(e.sim, 14); !slices.Equal(got, want14) {
		t.Errorf("course 14:\n got  %q\n want %q", got, want14)
	}
	if got := groups(e.sim, 15); !slices.Equal(got, want15) {
		t.Errorf("course 15: %q", got)
	}
	before := writes(e.sim)
	if rep, err := e.sync(t, pgtest.Environment, e.client(t)); err != nil || rep.Plan.Writes() != 0 || writes(e.sim) != before {
		t.Errorf("third apply: %v", err)
	}
}

// Moodle answers errors with HTTP 200; neither an exception nor an id of 0
// is ever taken as success, and an id of 0 is never stored or used.
func TestExceptionsAndIDZeroAreNeverSuccess(t *testing.T) {
	e := setup(t)
	e.sim.Inject(moodletest.Fault{Function: "core_group_add_group_members", Exception: &moodletest.Exception{
		Class: `core\exception\moodle_exception`, ErrorCode: "errorcoursecontextnotvalid", Message: "You cannot execute functions in the course context"}})
	// A throttling proxy that answered HTTP 200 and a group of id 0.
	e.sim.Inject(moodletest.Fault{Function: "core_group_create_groups", Times: 1,
		Body: `[{"id":0,"courseid":14,"name":"SEM2","description":"","descriptionformat":1,"enrolmentkey":"","idnumber":"mim:B"},` +
			`{"id":0,"courseid":15,"name":"TUT1","description":"","descriptionformat":1,"enrolmentkey":"","idnumber":"mim:D"},` +
			`{"id":0,"courseid":15,"name":"TUT2","description":"","descriptionformat":1,"enrolmentkey":"","idnumber":"mim:E"}]`})
	rep, err := e.sync(t, pgtest.Environment, e.client(t))
	var pe *groupsync.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("want a partial apply, got %v", err)
	}
	res := rep.Result
	if res.Count(groupsync.CreateGroup, groupsync.Applied) != 0 || res.Count(groupsync.CreateGroup, groupsync.Failed) != 3 {
		t.Errorf("creates answered with id 0:\n%s", text(res))
	}
	if res.Count(groupsync.AddMember, groupsync.Applied) != 0 || res.Count(groupsync.AddMember, groupsync.Failed) != 1 {
		t.Errorf("adds answered with an exception:\n%s", text(res))
	}
	for _, a := range res.Actions {
		if a.Outcome == groupsync.Failed && a.Kind == groupsync.AddMember && !strings.Contains(a.Error, "errorcoursecontextnotvalid") {
			t.Errorf("Moodle's error is not reported: %q", a.Error)
		}
	}
	if n := scalar[int64](t, e.db.Pool, `SELECT count(*) FROM ctl.group_sync_action WHERE outcome = 'applied' AND action IN ('create_group', 'add_member')`); n != 0 {
		t.Errorf("%d failed items recorded as applied", n)
	}
	if n := scalar[int64](t, e.db.Pool, `SELECT count(*) FROM ctl.group_sync_action WHERE action = 'add_member' AND outcome = 'not_attempted' AND group_id IS NULL`); n != 5 {
		t.Errorf("members of groups never created: %d not attempted", n)
	}
	// The faulty answer made nothing (the fault answered instead of Moodle),
	// so the next apply creates the groups for real.
	if _, err := e.sync(t, pgtest.Environment, e.client(t)); !errors.As(err, &pe) {
		t.Fatalf("second apply: %v", err)
	}
	if got := groups(e.sim, 15); !slices.Contains(got, "TUT2 mim:E [] in [TUT2]") {
		t.Errorf("course 15: %q", got)
	}
}

func TestBadTargetRowsPlanNothing(t *testing.T) {
	e := setup(t)
	groupsynctest.Fill(t, e.db.Pool,
		groupsynctest.Group("main", 14, "MOD1234-A7U-T1-2025", "cmis:A", "SEM1", 101),
		groupsynctest.Group("main", 15, "MOD5678-A7U-T1-2025", "mim:D", "TUT1", 101))
	_, err := groupsync.BuildPlan(context.Background(), e.db.Pool, e.client(t), groupsync.Options{Site: e.site})
	var te *groupsync.TargetError
	if !errors.As(err, &te) || len(te.Problems) != 1 || !strings.Contains(err.Error(), `course 14 group "cmis:A": group_idnumber does not carry the site's group prefix "mim:"`) {
		t.Fatalf("want a target error, got %v", err)
	}
	if e.sim.Calls("") != 0 {
		t.Error("a bad target was planned against the site")
	}
}

func text(r *groupsync.Result) string {
	var b strings.Builder
	_ = r.WriteText(&b)
	return b.String()
}

// Batches of one phase go out in parallel; a bad item still fails alone.
func TestParallelApplyIsolatesABadItem(t *testing.T) {
	ctx := context.Background()
	st, rows := benchWorld(benchScale{courses: 3, groups: 2, members: 12})
	db := pgtest.New(t)
	groupsynctest.Fill(t, db.Pool, rows...)
	sim := moodletest.NewServer(t, st)
	site := &groupsync.Site{Name: "main", URL: sim.URL(),
		Environment: pgtest.Environment, GroupPrefix: "mim:", Concurrency: 3, PageSize: 100}
	c, err := moodle.New("main", site.URL, moodletest.DefaultToken, moodle.WithBatchSize(groupsync.BatchSize), moodle.WithRate(0), moodle.WithConcurrency(3))
	if err != nil {
		t.Fatal(err)
	}
	p, err := groupsync.BuildPlan(ctx, db.Pool, c, groupsync.Options{Site: site})
	if err != nil {
		t.Fatal(err)
	}
	adds := p.Count(groupsync.AddMember)
	if adds != 72 || p.Waiting() != 0 {
		t.Fatalf("plan: %v, %d waiting", p.Counts(), p.Waiting())
	}
	victim := p.Courses[1].Ops[len(p.Courses[1].Ops)-1].User.UserID
	if !sim.Unenrol(p.Courses[1].CourseID, victim, "manual") {
		t.Fatal("unenrol")
	}
	permit, _, err := envguard.New(pgtest.Environment, db.Pool).WebServices(ctx, site.Guard(), c)
	if err != nil {
		t.Fatal(err)
	}
	res, err := groupsync.Apply(ctx, c, permit, p, groupsync.ApplyOptions{Parallel: 3})
	var pe *groupsync.PartialError
	if !errors.As(err, &pe) || pe.Failed != 1 || pe.NotAttempted != 0 {
		t.Fatalf("want one failure, got %v\n%s", err, text(res))
	}
	if n := res.Count(groupsync.AddMember, groupsync.Applied); n != adds-1 {
		t.Errorf("%d of %d members added", n, adds-1)
	}
	members := 0
	for _, g := range sim.Snapshot().Groups {
		members += len(g.Members)
	}
	if members != adds-1 {
		t.Errorf("the site has %d members in groups, want %d", members, adds-1)
	}
	for _, a := range res.Actions {
		if a.Outcome != groupsync.Applied && (a.User.UserID != victim || a.CourseID != p.Courses[1].CourseID) {
			t.Errorf("unexpected failure: %s: %s", a.Op, a.Error)
		}
	}
}

// A course that cannot be read is left alone and makes the sync partial;
// the others are synced.
func TestAnUnreadableCourseIsLeftAloneAndReported(t *testing.T) {
	e := setup(t)
	groupsynctest.Fill(t, e.db.Pool,
		groupsynctest.Group("main", 15, "MOD5678-A7U-T1-2025", "mim:D", "TUT1", 101, 102),
		groupsynctest.Group("main", 99, "GONE-2025", "mim:X", "X", 101))
	rep, err := e.sync(t, pgtest.Environment, e.client(t))
	var pe *groupsync.PartialError
	if !errors.As(err, &pe) || pe.Unreadable != 1 || pe.Failed != 0 || !strings.Contains(err.Error(), "1 courses could not be read") {
		t.Fatalf("want a partial sync, got %v", err)
	}
	if len(rep.Plan.Unreadable) != 1 || rep.Plan.Unreadable[0].CourseID != 99 {
		t.Errorf("unreadable: %+v", rep.Plan.Unreadable)
	}
	if got := groups(e.sim, 15); !slices.Equal(got, []string{"TUT1 mim:D [101 102] in [TUT1]"}) {
		t.Errorf("course 15: %q", got)
	}
	// Course 14 is not in this target: its MIM groups are not touched.
	if got := groups(e.sim, 14); len(got) != 3 {
		t.Errorf("course 14 changed: %q", got)
	}
	if got := scalar[string](t, e.db.Pool, `SELECT status || ' ' || unreadable FROM ctl.group_sync_apply`); got != "partial 1" {
		t.Errorf("apply record: %q", got)
	}
}

// The delete budget's edges: a plan deleting exactly the budget passes,
// one more is refused, and a plan that deletes only groupings (no group) is
// budgeted like any other.
func TestDeleteBudgetBoundaryAndGroupingsOnly(t *testing.T) {
	e := setup(t)
	setSetting(t, e.db.Pool, groupsync.SettingBudget, "2") // the plan deletes a group and a grouping: 2
	rep, err := e.sync(t, pgtest.Environment, e.client(t))
	if err != nil || rep.BudgetDecision != groupsync.BudgetPassed || rep.Budget.Deletes() != 2 {
		t.Fatalf("deletions exactly at the budget: %v, %q", err, rep.BudgetDecision)
	}

	// Groupings only: two stale MIM groupings, no MIM group to delete.
	st := state()
	st.Groupings = append(st.Groupings,
		moodletest.Grouping{ID: 4, CourseID: 14, Name: "OLD2", IDNumber: "mim:OLD2"},
		moodletest.Grouping{ID: 5, CourseID: 14, Name: "OLD3", IDNumber: "mim:OLD3"})
	g := &env{db: pgtest.New(t), sim: moodletest.NewServer(t, st)}
	g.site = &groupsync.Site{Name: "main", URL: g.sim.URL(),
		Environment: pgtest.Environment, GroupPrefix: "mim:", Concurrency: 2, PageSize: 4}
	const c14 = "MOD1234-A7U-T1-2025"
	groupsynctest.Fill(t, g.db.Pool,
		groupsynctest.Group("main", 14, c14, "mim:A", "SEM1", 101, 102, 110),
		groupsynctest.Group("main", 14, c14, "mim:OLD", "OLD1", 103))
	setSetting(t, g.db.Pool, groupsync.SettingBudget, "1")
	_, err = g.sync(t, pgtest.Environment, g.client(t))
	var be *groupsync.BudgetError
	if !errors.As(err, &be) || be.Budget.GroupDeletes != 0 || be.Budget.GroupingDeletes != 2 {
		t.Fatalf("two grouping deletions over a budget of 1: %v", err)
	}
	if n := writes(g.sim); n != 0 {
		t.Errorf("a refused plan wrote %d requests", n)
	}
}

// Member removals are budgeted per site (count and share of the members of
// MIM's groups) and per group: an emptied CMIS member view is refused
// whole; a group that would lose more than group_member_drop_percent has
// its removals held while the rest of the sync goes ahead.
func TestMemberRemovalsAreBudgeted(t *testing.T) {
	e := setup(t)
	const c14, c15 = "MOD1234-A7U-T1-2025", "MOD5678-A7U-T1-2025"
	// CMIS lost every member: mim:A (3 members in Moodle) would be emptied.
	groupsynctest.Fill(t, e.db.Pool,
		groupsynctest.Group("main", 14, c14, "mim:A", "SEM1"),
		groupsynctest.Group("main", 14, c14, "mim:OLD", "OLD1", 103))
	setSetting(t, e.db.Pool, groupsync.SettingMemberBudget, "2")
	_, err := e.sync(t, pgtest.Environment, e.client(t))
	var be *groupsync.BudgetError
	if !errors.As(err, &be) || be.Members.Removes != 3 || !strings.Contains(err.Error(), "more than member_remove_budget 2") ||
		!strings.Contains(err.Error(), "member_remove_override") {
		t.Fatalf("three removals over a budget of 2: %v", err)
	}
	if n := writes(e.sim); n != 0 {
		t.Errorf("a refused plan wrote %d requests", n)
	}
	if got := scalar[string](t, e.db.Pool, `SELECT decision FROM ctl.guard_event WHERE guard = 'member_remove_budget'`); got != "refused" {
		t.Errorf("guard_event: %q", got)
	}

	// Within the site budget, the group that would lose all its members is
	// held; the other change goes ahead.
	setSetting(t, e.db.Pool, groupsync.SettingMemberBudget, "1000")
	groupsynctest.Fill(t, e.db.Pool,
		groupsynctest.Group("main", 14, c14, "mim:A", "SEM1"),
		groupsynctest.Group("main", 14, c14, "mim:OLD", "OLD1", 103),
		groupsynctest.Group("main", 15, c15, "mim:D", "TUT1", 101))
	rep, err := e.sync(t, pgtest.Environment, e.client(t))
	if err != nil {
		t.Fatal(err)
	}
	if held := rep.Plan.Held(); len(held) != 1 || held[0].Group.IDNumber != "mim:A" || held[0].Removes != 3 {
		t.Fatalf("held %+v", held)
	}
	if e.sim.Calls("core_group_delete_group_members") != 0 || !slices.Contains(groups(e.sim, 14), "SEM1 mim:A [101 102 110] in [SEM1]") {
		t.Errorf("the held group lost members: %q", groups(e.sim, 14))
	}
	if !slices.Contains(groups(e.sim, 15), "TUT1 mim:D [101] in [TUT1]") {
		t.Errorf("the rest of the sync did not go ahead: %q", groups(e.sim, 15))
	}
	if got := scalar[string](t, e.db.Pool, `SELECT decision || ' ' || subject FROM ctl.guard_event WHERE guard = 'group_member_drop'`); got != "held mim:A" {
		t.Errorf("guard_event: %q", got)
	}
	// group_member_drop_override sends them once.
	setSetting(t, e.db.Pool, "group_member_drop_override", "true")
	if _, err := e.sync(t, pgtest.Environment, e.client(t)); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(groups(e.sim, 14), "SEM1 mim:A [] in [SEM1]") {
		t.Errorf("the override did not send the held removals: %q", groups(e.sim, 14))
	}
}
