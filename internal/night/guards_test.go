package night_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/export/groupsync"
	"github.com/mimwarehouse/mim/export/ims"
	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/night"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/pipeline"
	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/moodle"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// The regression tests of issue 15's three cases: a well-formed but empty or
// incomplete answer must never take anything away. Each runs a good first
// night, breaks one source, and runs the second night.

// writes counts the requests to functions that change Moodle, on every site.
func (w *world) writes() int {
	n := 0
	for _, s := range w.sims {
		n += s.Writes()
	}
	return n
}

func (w *world) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := w.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// runNight runs a night (every stage) and returns its result and exit code.
func runNight(t *testing.T, r *runEnv) (*pipeline.Result, int) {
	t.Helper()
	res, err := r.run(t, night.Options{Job: "test night"})
	return res, exitCode(err)
}

// firstNight runs the first night, which must succeed, and returns the
// number of Moodle writes made so far.
func firstNight(t *testing.T, w *world, r *runEnv) int {
	t.Helper()
	if res, code := runNight(t, r); code != 0 {
		t.Fatalf("the first night: exit %d, %s\n%s", code, res.Status(), r.out.String())
	}
	if w.writes() == 0 {
		t.Fatal("the first night wrote nothing to Moodle: the world has no group sync to guard")
	}
	return w.writes()
}

// A second night over unchanged sources writes nothing and exits 0: the
// baseline the cases below are measured against.
func TestSecondNightOverUnchangedSourcesWritesNothing(t *testing.T) {
	w := newWorld(t, testEnvironment)
	r := w.env(t, w.sites)
	out := r.out
	before := firstNight(t, w, r)
	res, code := runNight(t, r)
	if code != 0 || res.Status() != ledger.Succeeded {
		t.Fatalf("second night: exit %d, %s\n%s", code, res.Status(), out.String())
	}
	if n := w.writes() - before; n != 0 {
		t.Errorf("the second night made %d writes to Moodle over unchanged sources", n)
	}
}

// Case 1: `delete from` the CMIS group member view, then mim run. The run
// must be refused (exit 3) and no member removed from Moodle.
func TestEmptiedCMISMemberViewRemovesNoOne(t *testing.T) {
	w := newWorld(t, testEnvironment)
	r := w.env(t, w.sites)
	out := r.out
	before := firstNight(t, w, r)
	members := w.count(t, `SELECT count(*) FROM stg.cmis_group_member`)
	if _, err := w.db.Pool.Exec(context.Background(), `DELETE FROM moodlemgr.cmis_moodle_v_group_member`); err != nil {
		t.Fatal(err)
	}
	res, code := runNight(t, r)
	if code != 3 || res.Status() != ledger.Refused {
		t.Errorf("exit %d, status %s; want 3, refused\n%s", code, res.Status(), out.String())
	}
	if n := w.writes() - before; n != 0 {
		t.Errorf("%d writes reached Moodle (remove_member: %d)", n, w.sims["main"].Calls("core_group_delete_group_members"))
	}
	if n := w.count(t, `SELECT count(*) FROM raw.record WHERE source = 'cmis' AND entity = 'group_member' AND deleted_run IS NULL`); n != members {
		t.Errorf("raw keeps %d live CMIS members of %d", n, members)
	}
	if n := w.count(t, `SELECT count(*) FROM ctl.guard_event WHERE run_id = $1 AND decision = 'refused'`, res.RunID); n == 0 {
		t.Error("no refusal recorded in ctl.guard_event")
	}
}

// Case 2: a site answers core_user_get_users with an empty list and no
// warning. No user may be taken for deleted, and no member removed.
func TestEmptyMoodleUserListDeletesNoOne(t *testing.T) {
	w := newWorld(t, testEnvironment)
	r := w.env(t, w.sites)
	out := r.out
	before := firstNight(t, w, r)
	users := w.count(t, `SELECT count(*) FROM raw.record WHERE source = 'moodle' AND instance = 'main' AND entity = 'users' AND deleted_run IS NULL`)
	w.sims["main"].Inject(moodletest.Fault{Function: "core_user_get_users", Body: `{"users":[],"warnings":[]}`})
	res, code := runNight(t, r)
	if code != 3 || res.Status() != ledger.Refused {
		t.Errorf("exit %d, status %s; want 3, refused\n%s", code, res.Status(), out.String())
	}
	if n := w.writes() - before; n != 0 {
		t.Errorf("%d writes reached Moodle (remove_member: %d)", n, w.sims["main"].Calls("core_group_delete_group_members"))
	}
	if n := w.count(t, `SELECT count(*) FROM raw.record WHERE source = 'moodle' AND instance = 'main' AND entity = 'users' AND deleted_run IS NULL`); n != users {
		t.Errorf("raw keeps %d live users of site main, had %d", n, users)
	}
}

// Case 3: one SITS student row cannot be read (its name is not UTF-8, as in
// a legacy Oracle character set). It is a bad row within
// max_bad_rows_percent; its key must keep its last good version, so the
// student keeps every enrolment.
func TestUnreadableStudentRowKeepsTheStudent(t *testing.T) {
	w := newWorld(t, testEnvironment)
	r := w.env(t, w.sites)
	out := r.out
	cfg := r.Config
	sits := asciiCopy(t, w)
	cfg.Sources.SITS.DSN = sits
	firstNight(t, w, r)
	var code string
	var courses int
	if err := w.db.Pool.QueryRow(context.Background(), `SELECT user_idnumber, count(*)::int FROM ctl.published_membership
		WHERE instance = 'main' AND roletype = '01' AND status = 1 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1`).Scan(&code, &courses); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(context.Background(), sits.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if tag, err := conn.Exec(context.Background(), `UPDATE sismgr.ucl_bdo_v_moodle_student SET student_name = E'Jos\xe9 ' || surname
		WHERE student_code = $1`, code); err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("breaking student %s: %v (%d rows)", code, err, tag.RowsAffected())
	}
	res, _ := runNight(t, r)
	if n := len(w.steps(t, res.RunID, func(s ledger.StepSummary) bool {
		return s.Key.Source == "sits" && s.Key.Entity == "student" && s.Counts.Errors == 1
	})); n != 1 {
		t.Fatalf("the bad row was not reported (%d steps)\n%s", n, out.String())
	}
	if !w.live(t, extract.EntityID{Source: "sits", Instance: "sits", Entity: "student"}, code) {
		t.Errorf("student %s was taken for deleted: its last good version must stand", code)
	}
	if n := w.count(t, `SELECT count(*) FROM ctl.published_membership WHERE instance = 'main' AND user_idnumber = $1 AND roletype = '01' AND status = 1`, code); n != courses {
		t.Errorf("student %s is published in %d courses, was in %d: the IMS feed dropped them", code, n, courses)
	}
}

// asciiCopy writes the world's SITS and CMIS into a new SQL_ASCII database,
// which, like an Oracle database in a legacy character set, can hold text
// that is not UTF-8, and returns its DSN.
func asciiCopy(t *testing.T, w *world) config.DSN {
	t.Helper()
	dsn := pgtest.NewEncoded(t, "SQL_ASCII")
	pool, err := warehouse.Open(context.Background(), dsn, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := w.in.Write(context.Background(), pool, "", nil); err != nil {
		t.Fatal(err)
	}
	return dsn
}

// The threshold's boundary, end to end: with threshold_percent 100, a
// night that keeps exactly what Moodle was told passes, and one membership
// fewer is refused with nothing sent.
func TestThresholdBoundaryEndToEnd(t *testing.T) {
	w := newWorld(t, testEnvironment)
	r := w.env(t, w.sites)
	out := r.out
	before := firstNight(t, w, r)
	if _, err := settings.Set(context.Background(), w.db.Pool, "threshold_percent", "100", "test", "the boundary", nil); err != nil {
		t.Fatal(err)
	}
	res, code := runNight(t, r)
	if code != 0 || w.count(t, `SELECT count(*) FROM ctl.guard_event WHERE run_id = $1 AND guard = 'threshold' AND instance = 'main'
		AND decision = 'passed' AND percent = 100`, res.RunID) != 1 {
		t.Fatalf("a night at exactly threshold_percent must pass: exit %d\n%s", code, out.String())
	}
	// One registration of a published student goes.
	if _, err := w.db.Pool.Exec(context.Background(), `DELETE FROM sismgr.ucl_bdo_v_moodle_student_enrl WHERE (student_code, mod_occ_bdo_id) IN (
		SELECT student_code, mod_occ_bdo_id FROM sismgr.ucl_bdo_v_moodle_student_enrl e
		WHERE student_code IN (SELECT user_idnumber FROM ctl.published_membership WHERE instance = 'main' AND roletype = '01')
		ORDER BY 1, 2 LIMIT 1)`); err != nil {
		t.Fatal(err)
	}
	res, code = runNight(t, r)
	if code != 3 || w.count(t, `SELECT count(*) FROM ctl.guard_event WHERE run_id = $1 AND guard = 'threshold' AND instance = 'main'
		AND decision = 'refused'`, res.RunID) != 1 {
		t.Fatalf("one membership below threshold_percent 100 must be refused: exit %d\n%s", code, out.String())
	}
	if n := w.writes() - before; n != 0 {
		t.Errorf("%d writes reached Moodle", n)
	}
}

// XML escaping, end to end: a student whose name holds & < > is sent as a
// person, the file parses, and Moodle's IMS task stores the name as it is.
func TestIMSPersonNamesAreEscapedEndToEnd(t *testing.T) {
	w := newWorld(t, testEnvironment)
	r := w.env(t, w.sites)
	out := r.out
	firstNight(t, w, r)
	var code, username string
	if err := w.db.Pool.QueryRow(context.Background(), `SELECT user_idnumber, username FROM mart.exp_ims_person
		WHERE instance = 'main' AND account_exists ORDER BY 1 LIMIT 1`).Scan(&code, &username); err != nil {
		t.Fatal(err)
	}
	const name = "Ann & <Bo> > Cy"
	if _, err := w.db.Pool.Exec(context.Background(), `UPDATE sismgr.ucl_bdo_v_moodle_student SET firstname = $2 WHERE student_code = $1`,
		code, name); err != nil {
		t.Fatal(err)
	}
	cfg := r.Config
	cfg.Moodle[0].IMSPersons = true
	if res, exit := runNight(t, r); exit != 0 {
		t.Fatalf("exit %d, %s\n%s", exit, res.Status(), out.String())
	}
	// The file was re-parsed by a real XML parser before it was delivered
	// (the night succeeded); Moodle's task reads the name escaped, as it
	// stores it (formats.md: text is not entity-decoded).
	f, err := os.Open(filepath.Join(cfg.Exports.Dir, "ims-main.xml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var given []string
	for sc := ims.NewScanner(f); sc.Scan(); {
		if p, ok := sc.Element().(*ims.PersonElement); ok && p.IDNumber == code {
			given = append(given, p.Given)
		}
	}
	if want := "Ann &amp; &lt;Bo&gt; &gt; Cy"; len(given) != 1 || given[0] != want {
		t.Errorf("person %s (%s) in the file: given %q, want %q", code, username, given, want)
	}
}

// An id of 0 is never a created group, end to end: a proxy answers the
// night's core_group_create_groups with ids of 0 (the incumbent recorded
// them and added members to group 0). The creates fail, nothing is added
// to a group that does not exist, and the next night creates them.
func TestGroupIDZeroIsNeverUsedEndToEnd(t *testing.T) {
	w := newWorld(t, testEnvironment)
	r := w.env(t, w.sites)
	out := r.out
	ctx := context.Background()
	if res, code := nightStages(t, r, "extract", "transform"); code != 0 {
		t.Fatalf("exit %d, %s\n%s", code, res.Status(), out.String())
	}
	cfg := r.Config
	site := &cfg.Moodle[0]
	c, err := moodle.New(site.Name, site.URL, site.Token.Reveal(), moodle.WithBatchSize(groupsync.BatchSize))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := groupsync.BuildPlan(ctx, w.db.Pool, c, groupsync.Options{Site: wire.GroupSite(site)})
	if err != nil {
		t.Fatal(err)
	}
	var answer []map[string]any
	for _, op := range plan.Ops() {
		if op.Kind == groupsync.CreateGroup && !op.Deferred {
			answer = append(answer, map[string]any{"id": 0, "courseid": op.CourseID, "name": op.Group.Name, "description": "",
				"descriptionformat": 1, "enrolmentkey": "", "idnumber": op.Group.IDNumber})
		}
	}
	if len(answer) == 0 || len(answer) > groupsync.BatchSize {
		t.Fatalf("%d groups to create: the fault answers one batch", len(answer))
	}
	body, _ := json.Marshal(answer)
	sim := w.sims["main"]
	sim.Inject(moodletest.Fault{Function: "core_group_create_groups", Times: 1, Body: string(body)})
	res, _ := runNight(t, r)
	if o, _ := res.Outcome("groups:main"); o.Status != ledger.Partial {
		t.Errorf("groups:main %s, want partial\n%s", o.Status, out.String())
	}
	// No member was sent to a group that was never created (Moodle ids are
	// recorded only when positive: a sent add of group 0 shows as one
	// without a group id that was attempted).
	if n := w.count(t, `SELECT count(*) FROM ctl.group_sync_action WHERE run_id = $1 AND action = 'add_member'
		AND group_id IS NULL AND outcome <> 'not_attempted'`, res.RunID); n != 0 {
		t.Errorf("%d members sent to groups answered with id 0", n)
	}
	if n := w.count(t, `SELECT count(*) FROM ctl.group_sync_action WHERE run_id = $1 AND action = 'add_member'
		AND outcome = 'not_attempted'`, res.RunID); n == 0 {
		t.Error("the members of the groups not created should be recorded as not attempted")
	}
	if n := w.count(t, `SELECT count(*) FROM ctl.group_sync_action WHERE run_id = $1 AND action = 'create_group' AND outcome = 'applied'`,
		res.RunID); n != 0 {
		t.Errorf("%d creates answered with id 0 recorded as applied", n)
	}
	if _, code := runNight(t, r); code != 0 {
		t.Errorf("the next night: exit %d\n%s", code, out.String())
	}
	if n := w.count(t, `SELECT count(*) FROM ctl.group_sync_action WHERE action = 'create_group' AND outcome = 'applied'`); n != len(answer) {
		t.Errorf("%d groups created by the next night, want %d", n, len(answer))
	}
}

// nightStages runs some stages of a night.
func nightStages(t *testing.T, r *runEnv, stages ...string) (*pipeline.Result, int) {
	t.Helper()
	res, err := r.run(t, night.Options{Job: "test night", Stages: stages})
	return res, exitCode(err)
}
