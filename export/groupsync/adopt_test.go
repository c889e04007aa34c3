package groupsync_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/mimwarehouse/mim/export/groupsync"
	"github.com/mimwarehouse/mim/internal/envguard"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/moodle"
)

// The teacher's "Lab team A" holds the name of CMIS group mim:C: adopting
// it gives it MIM's idnumber (observed by re-reading, recorded with the
// reason), and the next sync makes its members CMIS's, through the
// ordinary plan, which counts the removals.
func TestAdoptATeachersGroup(t *testing.T) {
	e := setup(t)
	c := e.client(t)
	ctx := context.Background()
	o := groupsync.Options{Site: e.site, CourseID: 14, By: "tester"}
	ap, err := groupsync.PlanAdoption(ctx, e.db.Pool, c, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ap.Adoptions) != 1 || ap.Adoptions[0].ID != 3 || ap.Adoptions[0].IDNumber != "mim:C" || ap.Adoptions[0].Members != 2 {
		t.Fatalf("adoptions %+v", ap.Adoptions)
	}
	if cp := ap.After; cp == nil || cp.Count(groupsync.AddMember) != 5 || cp.Count(groupsync.RemoveMember) != 3 || len(cp.Conflicts) != 0 {
		// mim:A +103 -110, mim:B +104 +105 +106, mim:C (adopted) +107 -104 -105.
		t.Fatalf("after adoption: %+v", cp)
	}
	if _, err := groupsync.PlanAdoption(ctx, e.db.Pool, c, o, []string{"No such group"}); err != nil {
		t.Fatal(err)
	}
	// A reason is required; the environment guard comes first.
	run, err := ledger.Begin(ctx, e.db.Pool, "groups", pgtest.Environment, "test", []string{"groups", "adopt"})
	if err != nil {
		t.Fatal(err)
	}
	o.Run = run
	finished := false
	defer func() {
		if !finished {
			_ = run.Finish(context.Background(), ledger.Failed, 1, nil)
		}
	}()
	if err := groupsync.Adopt(ctx, e.db.Pool, c, envguard.New(pgtest.Environment, e.db.Pool), o, ap, " "); err == nil {
		t.Error("an adoption without a reason")
	}
	prod := *e.site
	prod.Environment = "production"
	po := o
	po.Site = &prod
	var refused *envguard.RefusedError
	if err := groupsync.Adopt(ctx, e.db.Pool, c, envguard.New(pgtest.Environment, e.db.Pool), po, ap, "agreed with the module lead"); !errors.As(err, &refused) {
		t.Fatalf("a site of another environment: %v", err)
	}
	if g := groups(e.sim, 14); !slices.Contains(g, `Lab team A  [104 105] in [Teacher set]`) {
		t.Fatalf("refused, yet the group changed: %q", g)
	}
	if err := groupsync.Adopt(ctx, e.db.Pool, c, envguard.New(pgtest.Environment, e.db.Pool), o, ap, "agreed with the module lead"); err != nil {
		t.Fatal(err)
	}
	finished = run.Finish(ctx, ledger.Succeeded, 0, nil) == nil
	if g := groups(e.sim, 14); !slices.Contains(g, `Lab team A mim:C [104 105] in [Teacher set]`) {
		t.Errorf("groups after adoption %q", g)
	}
	if n := scalar[int64](t, e.db.Pool, `SELECT count(*) FROM ctl.group_adoption WHERE instance = 'main' AND course_id = 14 AND moodle_id = 3
		AND status = 'adopted' AND idnumber = 'mim:C' AND members_before = 2 AND reason = 'agreed with the module lead' AND by = 'tester'`); n != 1 {
		t.Errorf("%d adoption rows", n)
	}
	// The next sync owns it, no conflict left: CMIS's member is added, and
	// the group losing both teacher's members (more than
	// group_member_drop_percent) has those removals held.
	rep, err := e.sync(t, pgtest.Environment, e.client(t))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Plan.Conflicts() != 0 {
		t.Errorf("conflicts after adoption: %d", rep.Plan.Conflicts())
	}
	if held := rep.Plan.Held(); len(held) != 1 || held[0].Group.IDNumber != "mim:C" {
		t.Errorf("held %+v", held)
	}
	if g := groups(e.sim, 14); !slices.Contains(g, `Lab team A mim:C [104 105 107] in [Teacher set Lab team A]`) {
		t.Errorf("groups after the sync %q", g)
	}
	// Agreed with the module lead: its members become CMIS's.
	setSetting(t, e.db.Pool, "group_member_drop_override", "true")
	if _, err := e.sync(t, pgtest.Environment, e.client(t)); err != nil {
		t.Fatal(err)
	}
	if g := groups(e.sim, 14); !slices.Contains(g, `Lab team A mim:C [107] in [Teacher set Lab team A]`) {
		t.Errorf("groups after the sync with the override %q", g)
	}
}

// A group with an idnumber of its own is not adopted: another integration
// may own it.
func TestAdoptRefusesAGroupWithItsOwnIDNumber(t *testing.T) {
	e := setup(t)
	c := e.client(t)
	ctx := context.Background()
	if _, err := c.UpdateGroups(ctx, []moodle.GroupUpdate{{ID: 3, Name: "Lab team A", IDNumber: "TIMETABLER-7"}}); err != nil {
		t.Fatal(err)
	}
	ap, err := groupsync.PlanAdoption(ctx, e.db.Pool, c, groupsync.Options{Site: e.site, CourseID: 14}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ap.Adoptions) != 1 || ap.Adoptions[0].Refused == "" || len(ap.Adoptable()) != 0 {
		t.Fatalf("%+v", ap.Adoptions)
	}
}
