package night_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/night"
	"github.com/mimwarehouse/mim/internal/notify/smtptest"
	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/load"
)

// moodleCalls counts the requests every simulated site has answered.
func (w *world) moodleCalls() int {
	n := 0
	for _, s := range w.sims {
		n += s.Calls("")
	}
	return n
}

// withMail sends the env's mail to a test SMTP server.
func withMail(t *testing.T, r *runEnv) *smtptest.Server {
	t.Helper()
	srv := smtptest.Start(t)
	r.Config.Notify = config.Notify{SMTP: config.SMTP{Host: srv.Host, Port: srv.Port, From: "mim@example.ac.uk"}, To: []string{"lama@example.ac.uk"}}
	return srv
}

// intraday runs the intraday cycle as mim serve does (mail on).
func intraday(t *testing.T, r *runEnv) (*ledger.RunSummary, int) {
	t.Helper()
	res, err := r.run(t, night.Options{Cycle: night.Intraday, Job: "intraday", Mail: true})
	runs, lerr := ledger.Recent(context.Background(), r.pool(t), 1)
	if lerr != nil || len(runs) == 0 || runs[0].ID != res.RunID {
		t.Fatalf("the intraday run is not the last in the ledger: %v", lerr)
	}
	return &runs[0], exitCode(err)
}

func (r *runEnv) pool(t *testing.T) warehouse.Querier {
	t.Helper()
	pool, err := r.Warehouse(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// registerSinceTheNight registers a published student of site main on a
// module occurrence mapped to a course of main they are not in, as SITS
// would at 10:00, and returns the student and the course.
func registerSinceTheNight(t *testing.T, w *world) (student, course string) {
	t.Helper()
	ctx := context.Background()
	var occ, dpt, regStatus, sms string
	if err := w.db.Pool.QueryRow(ctx, `SELECT r.mod_occ_bdo_id, m.course_idnumber, coalesce(r.mod_dpt_bdo_id, ''), r.reg_status, r.smo_sms
		FROM ctl.published_membership p
		JOIN ctl.course_mapping m ON m.instance = p.instance AND m.course_idnumber = p.course_idnumber
		  AND m.sis_kind = 'module_occurrence' AND m.active
		JOIN sismgr.ucl_bdo_v_moodle_student_enrl r ON r.mod_occ_bdo_id = m.sis_key AND r.student_code = p.user_idnumber
		WHERE p.instance = 'main' AND p.roletype = '01' AND p.status = 1
		ORDER BY 1, 2 LIMIT 1`).Scan(&occ, &course, &dpt, &regStatus, &sms); err != nil {
		t.Fatalf("no published registration to copy: %v", err)
	}
	var spr string
	if err := w.db.Pool.QueryRow(ctx, `SELECT p.user_idnumber, r.spr_code
		FROM ctl.published_membership p
		JOIN sismgr.ucl_bdo_v_moodle_student_enrl r ON r.student_code = p.user_idnumber
		WHERE p.instance = 'main' AND p.roletype = '01' AND p.status = 1
		  AND NOT EXISTS (SELECT 1 FROM ctl.published_membership q WHERE q.instance = 'main'
		                  AND q.user_idnumber = p.user_idnumber AND q.course_idnumber = $1)
		  AND NOT EXISTS (SELECT 1 FROM sismgr.ucl_bdo_v_moodle_student_enrl s
		                  WHERE s.student_code = p.user_idnumber AND s.mod_occ_bdo_id = $2)
		ORDER BY 1 LIMIT 1`, course, occ).Scan(&student, &spr); err != nil {
		t.Fatalf("no student to register on %s: %v", course, err)
	}
	if _, err := w.db.Pool.Exec(ctx, `INSERT INTO sismgr.ucl_bdo_v_moodle_student_enrl
		(student_code, mod_occ_bdo_id, mod_dpt_bdo_id, reg_status, smo_sms, spr_code) VALUES ($1, $2, nullif($3, ''), $4, $5, $6)`,
		student, occ, dpt, regStatus, sms, spr); err != nil {
		t.Fatal(err)
	}
	return student, course
}

// A student registered in SITS since the night is in the intraday cycle's
// IMS delta, and no Moodle site was asked anything: the night's Moodle
// state stands. Nothing but the enrolment feed went out, nothing was
// mailed, and the ledger tells the run from a night.
func TestIntradayPicksUpARegistrationSinceTheNight(t *testing.T) {
	w := newWorld(t, testEnvironment)
	r := w.env(t, w.sites)
	firstNight(t, w, r)
	srv := withMail(t, r)
	student, course := registerSinceTheNight(t, w)
	calls := w.moodleCalls()

	run, code := intraday(t, r)
	if code != 0 || run.Status != ledger.Succeeded {
		t.Fatalf("intraday: exit %d, %s\n%s", code, run.Status, r.out.String())
	}
	if n := w.moodleCalls() - calls; n != 0 {
		t.Errorf("the intraday cycle made %d requests to Moodle", n)
	}
	if run.Command != "intraday" {
		t.Errorf("the ledger records the run as %q", run.Command)
	}
	if n := w.count(t, `SELECT count(*) FROM ctl.published_membership WHERE instance = 'main' AND user_idnumber = $1
		AND course_idnumber = $2 AND roletype = '01' AND status = 1`, student, course); n != 1 {
		t.Errorf("%s in %s: %d published memberships after the intraday cycle\n%s", student, course, n, r.out.String())
	}
	ims, err := os.ReadFile(filepath.Join(r.Config.Exports.Dir, "ims-main.xml"))
	if err != nil || !strings.Contains(string(ims), student) || !strings.Contains(string(ims), course) {
		t.Errorf("the IMS delta does not carry %s in %s (%v)", student, course, err)
	}
	// Only the SIS sources were read; only the enrolment feed went out.
	if n := len(w.steps(t, run.ID, func(s ledger.StepSummary) bool { return s.Key.Source == "moodle" || s.Key.Stage == "groups" })); n != 0 {
		t.Errorf("%d Moodle extract or group-sync steps in the intraday run", n)
	}
	if n := len(w.steps(t, run.ID, func(s ledger.StepSummary) bool {
		return s.Key.Stage == "extract" && (s.Key.Source == "sits" || s.Key.Source == "cmis")
	})); n == 0 {
		t.Error("the intraday run read neither SITS nor CMIS")
	}
	if n := w.count(t, `SELECT count(*) FROM ctl.export_run WHERE run_id = $1 AND feed <> 'ims'`, run.ID); n != 0 {
		t.Errorf("%d exports of other feeds than ims in the intraday run", n)
	}
	if n := w.count(t, `SELECT count(*) FROM ctl.export_run WHERE run_id = $1 AND feed = 'ims'`, run.ID); n != len(w.sites) {
		t.Errorf("%d IMS exports in the intraday run, want one per site (%d)", n, len(w.sites))
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("a successful intraday cycle mailed %d messages", n)
	}
}

// A guard's refusal in the intraday cycle is the night's: nothing sent,
// exit 3, the refusal recorded, and the summary mailed.
func TestIntradayRefusedByTheThresholdMails(t *testing.T) {
	w := newWorld(t, testEnvironment)
	r := w.env(t, w.sites)
	firstNight(t, w, r)
	srv := withMail(t, r)
	if _, err := settings.Set(context.Background(), w.db.Pool, "threshold_percent", "100", "test", "the boundary", nil); err != nil {
		t.Fatal(err)
	}
	// One registration of a published student goes.
	if _, err := w.db.Pool.Exec(context.Background(), `DELETE FROM sismgr.ucl_bdo_v_moodle_student_enrl WHERE (student_code, mod_occ_bdo_id) IN (
		SELECT student_code, mod_occ_bdo_id FROM sismgr.ucl_bdo_v_moodle_student_enrl e
		WHERE student_code IN (SELECT user_idnumber FROM ctl.published_membership WHERE instance = 'main' AND roletype = '01')
		ORDER BY 1, 2 LIMIT 1)`); err != nil {
		t.Fatal(err)
	}
	published := w.count(t, `SELECT count(*) FROM ctl.export_run WHERE instance = 'main' AND feed = 'ims' AND status = 'published'`)

	run, code := intraday(t, r)
	if code != 3 || run.Status != ledger.Refused || run.ExitCode == nil || *run.ExitCode != 3 {
		t.Fatalf("intraday: exit %d, %s, want 3 and refused\n%s", code, run.Status, r.out.String())
	}
	if n := w.count(t, `SELECT count(*) FROM ctl.guard_event WHERE run_id = $1 AND guard = 'threshold' AND instance = 'main'
		AND decision = 'refused'`, run.ID); n != 1 {
		t.Errorf("%d threshold refusals recorded", n)
	}
	if n := w.count(t, `SELECT count(*) FROM ctl.export_run WHERE instance = 'main' AND feed = 'ims' AND status = 'published'`); n != published {
		t.Error("a refused intraday cycle published an IMS file")
	}
	var summary string
	for _, m := range srv.Messages() {
		msg, err := m.Parse()
		if err != nil {
			t.Fatal(err)
		}
		if s := msg.Header.Get("Subject"); strings.HasPrefix(s, "[REFUSED] MIM intraday on demo: run ") {
			summary = s
		}
	}
	if summary == "" {
		t.Errorf("no [REFUSED] summary mailed (%d messages)", len(srv.Messages()))
	}
}

// The intraday cycle takes the night's run lock: while a night holds it,
// an intraday run does not start, as a second night does not.
func TestIntradaySharesTheRunLock(t *testing.T) {
	w := newWorld(t, testEnvironment)
	r := w.env(t, w.sites)
	night1, err := ledger.Begin(context.Background(), w.db.Pool, "run", testEnvironment, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := w.moodleCalls()
	res, err := night.Run(context.Background(), r.Env, night.Options{Cycle: night.Intraday, Progress: "off", Out: r.out})
	var le *warehouse.LockedError
	if res != nil || !errors.As(err, &le) {
		t.Errorf("an intraday run started while a night held the lock (%v, %v)", res, err)
	}
	if err := night1.Finish(context.Background(), ledger.Succeeded, 0, nil); err != nil {
		t.Fatal(err)
	}
	for _, run := range w.runs(t) {
		if run.Command == "intraday" {
			t.Errorf("intraday run %d recorded", run.ID)
		}
	}
	counts, err := load.LiveCounts(context.Background(), w.db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range counts {
		if c.Source == "sits" || c.Source == "cmis" {
			t.Errorf("%d %s records landed while the night held the lock", c.Live, c.Instance)
		}
	}
	if w.moodleCalls() != calls {
		t.Error("Moodle was called")
	}
}

// The intraday cycle has only its stages and reads no Moodle site.
func TestIntradayRefusesWhatIsNotItsOwn(t *testing.T) {
	w := newWorld(t, testEnvironment)
	r := w.env(t, w.sites)
	for _, o := range []night.Options{
		{Cycle: night.Intraday, Stages: []string{"groups"}},
		{Cycle: night.Intraday, Sources: []string{"moodle:main"}},
		{Cycle: "hourly"},
	} {
		o.Out = r.out
		res, err := night.Run(context.Background(), r.Env, o)
		var ue *night.UsageError
		if res != nil || !errors.As(err, &ue) {
			t.Errorf("%+v: %v, want a usage error", o, err)
		}
	}
	if n := len(w.runs(t)); n != 0 {
		t.Errorf("%d runs recorded", n)
	}
}
