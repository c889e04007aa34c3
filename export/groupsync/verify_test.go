package groupsync_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/export/groupsync"
	"github.com/mimwarehouse/mim/export/groupsync/groupsynctest"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// bigGroup is a course with 30 enrolled users and a target of one group
// of 25 of them: one add_group_members request of 53 form variables.
func bigGroup(t *testing.T, opts ...moodletest.Option) *env {
	t.Helper()
	st := moodletest.State{
		Categories: []moodletest.Category{{ID: 1, Name: "Modules", Visible: true}},
		Courses:    []moodletest.Course{{ID: 39, ShortName: "COMP0012", FullName: "COMP0012", IDNumber: "COMP0012-A4U-T2-2025", CategoryID: 1, Visible: true}},
	}
	var members []int64
	for u := int64(101); u <= 130; u++ {
		st.Users = append(st.Users, moodletest.User{ID: u, Username: fmt.Sprint("s", u), FirstName: "Stu", LastName: fmt.Sprint("Dent", u),
			Email: fmt.Sprintf("s%d@example.ac.uk", u), IDNumber: fmt.Sprint("u", u)})
		st.Enrolments = append(st.Enrolments, moodletest.Enrolment{CourseID: 39, UserID: u, RoleIDs: []int64{5}})
		if u <= 125 {
			members = append(members, u)
		}
	}
	e := &env{db: pgtest.New(t), sim: moodletest.NewServer(t, st, opts...)}
	e.site = &groupsync.Site{Name: "main", URL: e.sim.URL(),
		Environment: pgtest.Environment, GroupPrefix: "mim:", Concurrency: 2, PageSize: 10}
	groupsynctest.Fill(t, e.db.Pool, groupsynctest.Group("main", 39, "COMP0012-A4U-T2-2025", "mim:LAB1", "LAB1", members...))
	return e
}

// Defect 4 of the real-Moodle comparison: with max_input_vars 40 on the
// site and MIM's budget at 900, PHP dropped the tail of an
// add_group_members request, Moodle answered null, and MIM said every
// write was applied. The apply re-reads what it wrote, finds the 6 members
// missing, and sends them again in small batches, which fit; Moodle ends
// right, but the sync is partial, not a clean success: the site drops
// what MIM sends, and a person must fix it.
func TestVoidWritesAreFoundAndSentAgain(t *testing.T) {
	e := bigGroup(t, moodletest.WithMaxInputVars(40))
	c := e.client(t) // max input vars 900: one request for the 25 members
	rep, err := e.sync(t, pgtest.Environment, c)
	var pe *groupsync.PartialError
	if !errors.As(err, &pe) || pe.Retried != 6 || pe.Void != 0 || !strings.Contains(err.Error(), "took only when sent again") {
		t.Fatalf("sync: %v, want a partial sync with 6 writes that took when sent again\n%s", err, text(rep.Result))
	}
	r := rep.Result
	if len(r.Retries) != 6 || r.VoidRetries() != 0 || r.Total(groupsync.Applied) != len(r.Actions) {
		t.Errorf("%d retries (%d still void), %d of %d applied\n%s", len(r.Retries), r.VoidRetries(),
			r.Total(groupsync.Applied), len(r.Actions), text(r))
	}
	if got := groups(e.sim, 39); len(got) != 1 || !strings.Contains(got[0], "[101 102 103") || !strings.Contains(got[0], "124 125]") {
		t.Errorf("Moodle has %q, want LAB1 with its 25 members", got)
	}
	if out := text(r); !strings.Contains(out, "6 writes Moodle answered without an error were not there") ||
		!strings.Contains(out, "6 took, 0 did not") {
		t.Errorf("the report does not say what did not take:\n%s", out)
	}
	for _, c := range []struct {
		sql  string
		want int64
	}{
		{`SELECT count(*) FROM ctl.group_sync_action WHERE outcome = 'void' AND NOT retry`, 6},
		{`SELECT count(*) FROM ctl.group_sync_action WHERE retry AND outcome = 'applied'`, 6},
		{`SELECT count(*) FROM ctl.group_sync_apply WHERE status = 'partial'`, 1},
	} {
		if n := scalar[int64](t, e.db.Pool, c.sql); n != c.want {
			t.Errorf("%s: %d, want %d", c.sql, n, c.want)
		}
	}
	// The step counts each write once (the 25 members, their group and
	// grouping, the assignment), the 6 by their retry.
	if st := lastStep(t, e.db.Pool); st.Status != ledger.Partial || st.Counts.Errors != 0 || st.Counts.New != 28 {
		t.Errorf("the ledger step is %s with %d new, %d errors; want partial with 28 new, no error", st.Status, st.Counts.New, st.Counts.Errors)
	}
	// A second apply has nothing to do.
	rep, err = e.sync(t, pgtest.Environment, c)
	if err != nil || rep.Plan.Writes() != 0 {
		t.Errorf("second apply: %v, %d writes", err, rep.Plan.Writes())
	}
}

// A site that answers every add without doing it (here a proxy answering
// null) leaves the writes void even when sent again: the sync is partial,
// and says so, instead of reporting them applied.
func TestWritesThatNeverTakeMakeTheSyncPartial(t *testing.T) {
	e := bigGroup(t)
	e.sim.Inject(moodletest.Fault{Function: "core_group_add_group_members", Body: "null"})
	rep, err := e.sync(t, pgtest.Environment, e.client(t))
	var pe *groupsync.PartialError
	if !errors.As(err, &pe) || pe.Void != 25 {
		t.Fatalf("want 25 void writes, got %v", err)
	}
	if rep.Result.Total(groupsync.Applied) != len(rep.Result.Actions)-25 {
		t.Errorf("%d of %d applied\n%s", rep.Result.Total(groupsync.Applied), len(rep.Result.Actions), text(rep.Result))
	}
	if n := scalar[int64](t, e.db.Pool, `SELECT count(*) FROM ctl.group_sync_apply WHERE status = 'partial'`); n != 1 {
		t.Errorf("the apply is not recorded as partial")
	}
	if !strings.Contains(err.Error(), "did not take, even when sent again") {
		t.Errorf("error: %v", err)
	}
}
