package groupsync_test

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/mimwarehouse/mim/export/groupsync"
	"github.com/mimwarehouse/mim/export/groupsync/groupsynctest"
	"github.com/mimwarehouse/mim/extract"
	moodlex "github.com/mimwarehouse/mim/extract/moodle"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/envguard"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/load"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// readFunctions are the web-service functions group sync reads a course's
// state with.
var readFunctions = []string{"core_group_get_course_groups", "core_group_get_course_groupings",
	"core_group_get_groupings", "core_enrol_get_enrolled_users"}

// reads counts the per-course group and member reads the site answered.
func reads(s *moodletest.Site) int {
	n := 0
	for _, f := range readFunctions {
		n += s.Calls(f)
	}
	return n
}

// readFromDatabase makes e's site a moodle-db site over a copy of the
// simulator's tables (as its replica holds them now), and returns the
// site's configuration, which the night's read takes.
func (e *env) readFromDatabase(t *testing.T) *config.MoodleSite {
	t.Helper()
	mdb := pgtest.NewEmpty(t)
	db, err := sql.Open("pgx", mdb.DSN.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := e.sim.WriteTables(context.Background(), db, moodletest.Postgres, moodletest.TableOptions{}); err != nil {
		t.Fatal(err)
	}
	e.site.ReadsDatabase = true
	return &config.MoodleSite{Name: e.site.Name, URL: e.site.URL, Environment: e.site.Environment, Kind: config.KindMoodleDB,
		GroupPrefix: e.site.GroupPrefix, Entities: append([]string(nil), config.DefaultMoodleEntities...),
		Database: &config.MoodleDatabase{Driver: "pgx", DSN: mdb.DSN, Prefix: "mdl_", MaxLag: time.Hour, Timeout: time.Minute}}
}

// night begins a `mim run` ledger run and extracts the site from its
// database in it, as the night's extract stage does; it returns the run
// and the read's error.
func (e *env) night(t *testing.T, site *config.MoodleSite, opts ...moodlex.Option) (*ledger.Run, error) {
	t.Helper()
	ctx := context.Background()
	run, err := ledger.Begin(ctx, e.db.Pool, "run", pgtest.Environment, "test", []string{"run"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = run.Finish(context.Background(), ledger.Succeeded, 0, nil) })
	src, err := moodlex.NewDB(wire.MoodleSite(site), extract.Options{}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return run, src.Extract(ctx, load.New(e.db.Pool, run))
}

// samePlan fails t unless the two plans hold the same writes, reads and
// budget bases.
func samePlan(t *testing.T, got, want *groupsync.Plan) {
	t.Helper()
	if !reflect.DeepEqual(got.Courses, want.Courses) {
		t.Errorf("the plans differ:\n got  %+v\n want %+v", got.Courses, want.Courses)
	}
	if !reflect.DeepEqual(got.Counts(), want.Counts()) || len(got.Unreadable) != len(want.Unreadable) ||
		got.OwnedGroups != want.OwnedGroups || got.OwnedGroupings != want.OwnedGroupings ||
		got.OwnedMembers != want.OwnedMembers || got.DesiredGroups != want.DesiredGroups {
		t.Errorf("the plans differ: got %v, %d unreadable, owned %d/%d/%d, desired %d; want %v, %d unreadable, owned %d/%d/%d, desired %d",
			got.Counts(), len(got.Unreadable), got.OwnedGroups, got.OwnedGroupings, got.OwnedMembers, got.DesiredGroups,
			want.Counts(), len(want.Unreadable), want.OwnedGroups, want.OwnedGroupings, want.OwnedMembers, want.DesiredGroups)
	}
}

// A site read from its database tonight: group sync takes the courses'
// groups, groupings and members from that read, asks the site for none of
// them, plans exactly what the web services' state gives, and the apply
// (still over the web services, under every guard) reaches the target.
func TestGroupSyncReadsActualFromTheNightsDatabaseRead(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	dbSite := e.readFromDatabase(t)
	c := e.client(t)
	ws, err := groupsync.BuildPlan(ctx, e.db.Pool, c, groupsync.Options{Site: e.site})
	if err != nil {
		t.Fatal(err)
	}
	if ws.Read.Courses != 0 || reads(e.sim) == 0 {
		t.Fatalf("a plan outside a run read %d courses from a database read and made %d reads", ws.Read.Courses, reads(e.sim))
	}
	if ws.Writes() == 0 {
		t.Fatal("the fixture plans no write: the comparison would prove nothing")
	}

	run, err := e.night(t, dbSite)
	if err != nil {
		t.Fatalf("the database read: %v", err)
	}
	before := reads(e.sim)
	p, err := groupsync.BuildPlan(ctx, e.db.Pool, c, groupsync.Options{Site: e.site, Run: run})
	if err != nil {
		t.Fatal(err)
	}
	if n := reads(e.sim) - before; n != 0 {
		t.Errorf("the plan made %d per-course reads of the site; want none", n)
	}
	if p.Read.RunID != run.ID || p.Read.Courses != 2 || p.Read.Reason != "" {
		t.Errorf("the plan's read: %+v; want both courses from run %d", p.Read, run.ID)
	}
	samePlan(t, p, ws)

	// The whole sync in that run: the environment guard and the budgets
	// decide as ever, the writes go through the web services.
	rep, err := groupsync.Sync(ctx, e.db.Pool, c, envguard.New(pgtest.Environment, e.db.Pool),
		groupsync.Options{Site: e.site, Run: run, By: "tester"})
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if rep.Plan.Read.Courses != 2 || rep.BudgetDecision != "passed" {
		t.Errorf("sync read %+v, delete budget %q", rep.Plan.Read, rep.BudgetDecision)
	}
	if got := groups(e.sim, 14); !reflect.DeepEqual(got, want14) {
		t.Errorf("course 14:\n got  %q\n want %q", got, want14)
	}
	if got := groups(e.sim, 15); !reflect.DeepEqual(got, want15) {
		t.Errorf("course 15:\n got  %q\n want %q", got, want15)
	}
	detail := scalar[string](t, e.db.Pool, `SELECT detail->>'actual_from_database_read' FROM ctl.run_step
		WHERE run_id = $1 AND stage = 'groups' AND instance = 'main'`, run.ID)
	if !strings.Contains(detail, `"courses": 2`) {
		t.Errorf("the step's detail says %s; want the two courses from the database read", detail)
	}
}

// The budgets judge a plan from the database read as one from the web
// services: a delete beyond the budget is refused, nothing written.
func TestGroupSyncFromTheDatabaseReadKeepsTheBudgets(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	setSetting(t, e.db.Pool, groupsync.SettingBudgetPercent, "10")
	dbSite := e.readFromDatabase(t)
	run, err := e.night(t, dbSite)
	if err != nil {
		t.Fatal(err)
	}
	before := writes(e.sim)
	rep, err := groupsync.Sync(ctx, e.db.Pool, e.client(t), envguard.New(pgtest.Environment, e.db.Pool),
		groupsync.Options{Site: e.site, Run: run, By: "tester"})
	var be *groupsync.BudgetError
	if !errors.As(err, &be) || rep.Plan == nil || rep.Plan.Read.Courses != 2 {
		t.Fatalf("sync: %v (read %+v); want the delete budget's refusal of a plan from the database read", err, rep.Plan)
	}
	if n := writes(e.sim) - before; n != 0 {
		t.Errorf("%d writes reached the site past a refused budget", n)
	}
	// And the environment guard: a site labelled for another environment
	// is not written, whatever read its state.
	e.site.Environment = "production"
	before = writes(e.sim)
	if _, err := groupsync.Sync(ctx, e.db.Pool, e.client(t), envguard.New(pgtest.Environment, e.db.Pool),
		groupsync.Options{Site: e.site, Run: run, By: "tester"}); err == nil {
		t.Error("a site of another environment was synced")
	}
	if n := writes(e.sim) - before; n != 0 {
		t.Errorf("%d writes reached another environment's site", n)
	}
}

// A database read that is not tonight's (an earlier run's), or that failed
// tonight (a replica too far behind), is not Moodle's state now: group sync
// reads every course over the web services, and plans the same.
func TestGroupSyncFallsBackToWebServicesWithoutTonightsRead(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	dbSite := e.readFromDatabase(t)
	c := e.client(t)
	ws, err := groupsync.BuildPlan(ctx, e.db.Pool, c, groupsync.Options{Site: e.site})
	if err != nil {
		t.Fatal(err)
	}
	earlier, err := e.night(t, dbSite)
	if err != nil {
		t.Fatalf("the earlier night's read: %v", err)
	}
	// One run at a time holds the warehouse.
	if err := earlier.Finish(ctx, ledger.Succeeded, 0, nil); err != nil {
		t.Fatal(err)
	}
	later, err := ledger.Begin(ctx, e.db.Pool, "run", pgtest.Environment, "test", []string{"run"})
	if err != nil {
		t.Fatal(err)
	}
	if err := later.Finish(ctx, ledger.Succeeded, 0, nil); err != nil {
		t.Fatal(err)
	}

	// The replica's newest activity is from when it was written: two hours
	// later it is behind by more than max_lag.
	failed, err := e.night(t, dbSite, moodlex.WithClock(func() time.Time { return time.Now().Add(2 * time.Hour) }))
	var lagErr *moodlex.LagError
	if !errors.As(err, &lagErr) {
		t.Fatalf("the lagging read: %v; want a refusal for lag", err)
	}

	for name, run := range map[string]*ledger.Run{"an earlier run's read": later, "a read that failed tonight": failed} {
		before := reads(e.sim)
		p, err := groupsync.BuildPlan(ctx, e.db.Pool, c, groupsync.Options{Site: e.site, Run: run})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n := reads(e.sim) - before; n < 2*2 {
			t.Errorf("%s: %d reads of the site; want each course read over the web services", name, n)
		}
		if p.Read.Courses != 0 || !strings.Contains(p.Read.Reason, "not usable") {
			t.Errorf("%s: the plan's read %+v; want none from the database read, and why", name, p.Read)
		}
		samePlan(t, p, ws)
	}
}

// A group-sync course tonight's database read did not read (not on the
// site when it was read) is read over the web services; the others come
// from the read.
func TestGroupSyncReadsOverWebServicesWhatTheDatabaseReadLacks(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	groupsynctest.Fill(t, e.db.Pool,
		groupsynctest.Group("main", 14, "MOD1234-A7U-T1-2025", "mim:A", "SEM1", 101, 102, 103),
		groupsynctest.Group("main", 15, "MOD5678-A7U-T1-2025", "mim:D", "TUT1", 101, 102),
		groupsynctest.Group("main", 99, "MOD9999-A7U-T1-2025", "mim:X", "X", 101))
	dbSite := e.readFromDatabase(t)
	c := e.client(t)
	ws, err := groupsync.BuildPlan(ctx, e.db.Pool, c, groupsync.Options{Site: e.site})
	if err != nil {
		t.Fatal(err)
	}
	run, err := e.night(t, dbSite)
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]int{}
	for _, f := range readFunctions {
		before[f] = e.sim.Calls(f)
	}
	p, err := groupsync.BuildPlan(ctx, e.db.Pool, c, groupsync.Options{Site: e.site, Run: run})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.sim.Calls("core_group_get_course_groups") - before["core_group_get_course_groups"]; n != 1 {
		t.Errorf("%d course group reads; want one, of course 99", n)
	}
	if p.Read.Courses != 2 || !strings.Contains(p.Read.Reason, "1 courses not read") {
		t.Errorf("the plan's read: %+v; want courses 14 and 15 from the database read, 99 over the web services", p.Read)
	}
	samePlan(t, p, ws)
}
