package feeds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/export/deliver"
	"github.com/mimwarehouse/mim/export/feeds/feedstest"
	"github.com/mimwarehouse/mim/export/guard"
	"github.com/mimwarehouse/mim/internal/ledger"
)

func imsOnly() Options { return Options{Feeds: []Feed{IMS}} }

func TestIMSFirstExportThenDelta(t *testing.T) {
	e := newEnv(t)
	target := []feedstest.Membership{
		{Instance: "main", CourseIDNumber: "GEOG0012-A6U-T1-2025", UserIDNumber: "21004567", RoleType: "student", Status: 1,
			Begin: day("2025-09-22"), LastDay: day("2026-01-16"), Cohort: "Group B"},
		{Instance: "main", CourseIDNumber: "GEOG0012-A6U-T1-2025", UserIDNumber: "20987654", RoleType: "student", Status: 1},
		{Instance: "main", CourseIDNumber: "GEOG0012-A6U-T1-2025", UserIDNumber: "S004211", RoleType: "editingteacher", Status: 1},
		{Instance: "main", CourseIDNumber: "ECON0001-A6U-T1-2025", UserIDNumber: "21004567", RoleType: "01", Status: 1},
		{Instance: "main", CourseIDNumber: "ECON0001-A6U-T1-2025", UserIDNumber: "21000001", RoleType: "student", Status: 0}, // kept suspended: never sent
		{Instance: "other", CourseIDNumber: "X", UserIDNumber: "21004567", RoleType: "student", Status: 1},                   // not a configured site
	}
	feedstest.FillMemberships(t, e.pool, target)
	x := e.exporter()
	sum := e.export(x, imsOnly())
	r := e.result(sum, "main", IMS)
	if r.Status != StatusPublished || sum.Err() != nil {
		t.Fatalf("first export: %s %v %v", r.Status, r.Err, r.Notes)
	}
	if r.Adds != 4 || r.Drops != 0 || r.Changes != 0 {
		t.Errorf("first export counts: adds %d drops %d changes %d, want 4 0 0", r.Adds, r.Drops, r.Changes)
	}
	first := stat(t, e.imsPath("main"))
	got := members(t, first.data)
	want := []string{
		"ECON0001-A6U-T1-2025 21004567 01 enrol",
		"GEOG0012-A6U-T1-2025 20987654 01 enrol",
		"GEOG0012-A6U-T1-2025 21004567 01 enrol 2025-09-22 2026-01-17 Group B",
		"GEOG0012-A6U-T1-2025 S004211 02 enrol",
	}
	if !slices.Equal(got, want) {
		t.Errorf("first file:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(string(first.data), "<target>moodle-main</target>") {
		t.Error("the file must name the site's target")
	}
	pub := e.published("main")
	wantPub := []string{
		"ECON0001-A6U-T1-2025 21004567 01 1 - -",
		"GEOG0012-A6U-T1-2025 20987654 01 1 - -",
		"GEOG0012-A6U-T1-2025 21004567 01 1 2025-09-22 2026-01-16", // the mart's inclusive last day
		"GEOG0012-A6U-T1-2025 S004211 02 1 - -",
	}
	if !slices.Equal(pub, wantPub) {
		t.Errorf("published:\n%s\nwant\n%s", strings.Join(pub, "\n"), strings.Join(wantPub, "\n"))
	}
	if n := e.count(`SELECT count(*) FROM ctl.export_run WHERE instance = 'main' AND feed = 'ims' AND status = 'published'
		AND active_students = 2 AND active_memberships = 4 AND sha256 = $1`, r.SHA256); n != 1 {
		t.Errorf("export_run rows with the file's checksum and counts: %d", n)
	}
	if n := e.count(`SELECT count(*) FROM ctl.guard_event WHERE guard = 'threshold' AND decision = 'passed' AND instance = 'main'`); n != 1 {
		t.Errorf("threshold passed events: %d", n)
	}
	if es := e.archiveEntries(); len(es) != 1 || es[0].SHA256 != r.SHA256 || es[0].RunID != sum.RunID || es[0].Feed != "ims" {
		t.Errorf("archive: %+v", es)
	}
	if n := e.steps(sum.RunID, func(s ledger.StepSummary) bool {
		return s.Key.Stage == "export" && s.Key.Instance == "main" && s.Key.Entity == "ims" && s.Status == ledger.Succeeded && s.Counts.New == 4
	}); n != 1 {
		t.Errorf("ledger steps: %d", n)
	}

	// Unchanged, and Moodle applied the file: nothing to send, and
	// yesterday's file stays.
	e.applied("main")
	sum = e.export(x, imsOnly())
	if r := e.result(sum, "main", IMS); r.Status != StatusEmpty {
		t.Fatalf("unchanged export: %s %v", r.Status, r.Err)
	}
	if !stat(t, e.imsPath("main")).same(first) {
		t.Error("an empty delta must not replace the last file")
	}

	// A delta: one student gone, one course's dates changed, one new student,
	// and the suspended one now active.
	target = slices.DeleteFunc(slices.Clone(target), func(m feedstest.Membership) bool { return m.UserIDNumber == "20987654" })
	target[0].LastDay = day("2026-03-27")
	target[3].Status = 1
	target = append(target, feedstest.Membership{Instance: "main", CourseIDNumber: "ECON0001-A6U-T1-2025", UserIDNumber: "21009999",
		RoleType: "student", Status: 1})
	target[2].Status = 1
	for i := range target {
		if target[i].UserIDNumber == "21000001" {
			target[i].Status = 1
		}
	}
	feedstest.FillMemberships(t, e.pool, target)
	sum = e.export(x, imsOnly())
	r = e.result(sum, "main", IMS)
	if r.Status != StatusPublished {
		t.Fatalf("delta: %s %v", r.Status, r.Err)
	}
	got = members(t, stat(t, e.imsPath("main")).data)
	want = []string{
		"ECON0001-A6U-T1-2025 21000001 01 enrol",
		"ECON0001-A6U-T1-2025 21009999 01 enrol",
		"GEOG0012-A6U-T1-2025 20987654 01 drop",
		"GEOG0012-A6U-T1-2025 21004567 01 enrol 2025-09-22 2026-03-28 Group B",
	}
	if !slices.Equal(got, want) {
		t.Errorf("delta file:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r.Adds != 2 || r.Changes != 1 || r.Drops != 1 {
		t.Errorf("delta counts: adds %d changes %d drops %d", r.Adds, r.Changes, r.Drops)
	}
	if len(r.SampleDrops) != 1 || !strings.Contains(r.SampleDrops[0], "20987654") {
		t.Errorf("sample drops: %v", r.SampleDrops)
	}
	if p := e.published("main"); len(p) != 5 || slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, "20987654") }) {
		t.Errorf("published after the delta: %v", p)
	}
	if es := e.archiveEntries(); len(es) != 2 {
		t.Errorf("archive entries: %d, want 2", len(es))
	}

	// --full re-asserts every active membership (the drop, once applied,
	// is no longer pending).
	e.applied("main")
	sum = e.export(x, Options{Feeds: []Feed{IMS}, Full: true})
	if r := e.result(sum, "main", IMS); r.Status != StatusPublished {
		t.Fatalf("full: %s %v", r.Status, r.Err)
	}
	if got := members(t, stat(t, e.imsPath("main")).data); len(got) != 5 {
		t.Errorf("a full file re-asserts all 5 memberships: %v", got)
	}
}

func TestIMSSuspensionFrozenCoursesAndRoleDrops(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.set("threshold_percent", "0") // the frozen course leaves the target
	// C1's mapping is active, C2's inactive (frozen).
	for _, m := range []struct {
		course string
		active bool
	}{{"C1", true}, {"C2", false}} {
		if _, err := e.pool.Exec(ctx, `INSERT INTO ctl.course_mapping (instance, course_idnumber, sis_kind, sis_key, active, created_by, updated_by)
			VALUES ('main', $1, 'module_occurrence', $1, $2, 'test', 'test')`, m.course, m.active); err != nil {
			t.Fatal(err)
		}
	}
	target := []feedstest.Membership{
		{Instance: "main", CourseIDNumber: "C1", UserIDNumber: "s1", RoleType: "01", Status: 1},
		{Instance: "main", CourseIDNumber: "C1", UserIDNumber: "s2", RoleType: "01", Status: 1},
		{Instance: "main", CourseIDNumber: "C1", UserIDNumber: "s3", RoleType: "01", Status: 1},
		{Instance: "main", CourseIDNumber: "C1", UserIDNumber: "t1", RoleType: "01", Status: 1},
		{Instance: "main", CourseIDNumber: "C1", UserIDNumber: "t1", RoleType: "08", Status: 1},
		{Instance: "main", CourseIDNumber: "C2", UserIDNumber: "s1", RoleType: "01", Status: 1},
	}
	feedstest.FillMemberships(t, e.pool, target)
	// Publish C2 once while its mapping was active.
	if _, err := e.pool.Exec(ctx, `UPDATE ctl.course_mapping SET active = true WHERE course_idnumber = 'C2'`); err != nil {
		t.Fatal(err)
	}
	x := e.exporter()
	if r := e.result(e.export(x, imsOnly()), "main", IMS); r.Status != StatusPublished {
		t.Fatalf("first: %s %v", r.Status, r.Err)
	}
	e.applied("main")
	if _, err := e.pool.Exec(ctx, `UPDATE ctl.course_mapping SET active = false WHERE course_idnumber = 'C2'`); err != nil {
		t.Fatal(err)
	}
	// The mart no longer lists C2 (its mapping is inactive); s2 is suspended in
	// SITS; t1 stops being a student but stays a teacher.
	feedstest.FillMemberships(t, e.pool, []feedstest.Membership{
		target[0], {Instance: "main", CourseIDNumber: "C1", UserIDNumber: "s2", RoleType: "01", Status: 0}, target[2], target[4],
	})
	sum := e.export(x, imsOnly())
	r := e.result(sum, "main", IMS)
	if r.Status != StatusPublished {
		t.Fatalf("second: %s %v %v", r.Status, r.Err, r.Notes)
	}
	got := members(t, stat(t, e.imsPath("main")).data)
	if want := []string{"C1 s2 01 drop"}; !slices.Equal(got, want) {
		t.Errorf("file: %v, want %v (no drop in the frozen C2; t1's student role not dropped: Moodle would drop the whole enrolment)", got, want)
	}
	pub := e.published("main")
	want := []string{"C1 s1 01 1 - -", "C1 s2 01 0 - -", "C1 s3 01 1 - -", "C1 t1 08 1 - -", "C2 s1 01 1 - -"}
	if !slices.Equal(pub, want) {
		t.Errorf("published:\n%s\nwant\n%s", strings.Join(pub, "\n"), strings.Join(want, "\n"))
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "frozen") }) {
		t.Errorf("notes should mention the frozen course: %v", r.Notes)
	}
	// s2 suspended stays so: once Moodle applied it, no further file.
	e.applied("main")
	if r := e.result(e.export(x, imsOnly()), "main", IMS); r.Status != StatusEmpty {
		t.Errorf("third: %s, want empty", r.Status)
	}
	// s2 gone from the target entirely: forgotten quietly, nothing sent.
	feedstest.FillMemberships(t, e.pool, []feedstest.Membership{target[0], target[2], target[4]})
	if r := e.result(e.export(x, imsOnly()), "main", IMS); r.Status != StatusEmpty {
		t.Errorf("fourth: %s, want empty", r.Status)
	}
	if pub := e.published("main"); len(pub) != 4 {
		t.Errorf("a suspended row gone from the target is forgotten: %v", pub)
	}
}

// publishBase publishes 10 students in each of C1 and C2 and returns the target.
func publishBase(t *testing.T, e *env, x *Exporter) []feedstest.Membership {
	t.Helper()
	target := concat(students("main", "C1", "a", 10), students("main", "C2", "b", 10))
	feedstest.FillMemberships(t, e.pool, target)
	if r := e.result(e.export(x, imsOnly()), "main", IMS); r.Status != StatusPublished {
		t.Fatalf("base export: %s %v", r.Status, r.Err)
	}
	return target
}

func TestIMSThresholdRefusesAndMails(t *testing.T) {
	e := newEnv(t)
	x := e.exporter(WithMailer(e.mail()))
	e.set("threshold_email", "service-owner@example.ac.uk")
	target := publishBase(t, e, x)
	before := stat(t, e.imsPath("main"))
	pubBefore := e.published("main")
	archBefore := e.archiveEntries()

	// 14 of 20 memberships left: 70% < 75%.
	feedstest.FillMemberships(t, e.pool, concat(target[:7], target[10:17]))
	sum := e.export(x, imsOnly())
	r := e.result(sum, "main", IMS)
	var re *guard.RefusedError
	if r.Status != StatusRefused || !errors.As(r.Err, &re) {
		t.Fatalf("status %s err %v, want a threshold refusal", r.Status, r.Err)
	}
	var ec interface{ ExitCode() int }
	if err := sum.Err(); !errors.As(err, &ec) || ec.ExitCode() != 3 {
		t.Errorf("a refusal exits 3: %v", err)
	}
	if !stat(t, e.imsPath("main")).same(before) {
		t.Error("a refused export must leave the last file as it was")
	}
	if _, err := os.Stat(e.imsPath("main") + ".tmp"); !os.IsNotExist(err) {
		t.Error("no temporary file may be left")
	}
	if !slices.Equal(e.published("main"), pubBefore) {
		t.Error("a refused export must leave published_membership as it was")
	}
	if len(e.archiveEntries()) != len(archBefore) {
		t.Error("a refused export archives nothing")
	}
	if e.setting("threshold_override") != "false" {
		t.Error("the override must not change")
	}
	if n := e.count(`SELECT count(*) FROM ctl.guard_event WHERE guard = 'threshold' AND decision = 'refused'
		AND subject IN ('active_students', 'active_memberships') AND previous = 20 AND current = 14 AND notified AND run_id = $1`, sum.RunID); n != 1 {
		t.Errorf("refused guard events with figures: %d", n)
	}
	if n := e.count(`SELECT count(*) FROM ctl.export_run WHERE run_id = $1 AND status = 'refused'`, sum.RunID); n != 1 {
		t.Errorf("refused export_run rows: %d", n)
	}
	if n := e.steps(sum.RunID, func(s ledger.StepSummary) bool { return s.Key.Entity == "ims" && s.Status == ledger.Refused }); n != 1 {
		t.Errorf("refused ledger steps: %d", n)
	}
	msgs := e.smtp.Messages()
	if len(msgs) != 1 {
		t.Fatalf("mails: %d, want 1", len(msgs))
	}
	m, err := msgs[0].Parse()
	if err != nil {
		t.Fatal(err)
	}
	if to := msgs[0].To; len(to) != 1 || to[0] != "service-owner@example.ac.uk" {
		t.Errorf("mail to %v, want threshold_email", to)
	}
	if subj := m.Header.Get("Subject"); !strings.Contains(subj, "MIM threshold breached") || !strings.Contains(subj, "main") {
		t.Errorf("subject %q", subj)
	}
	body := string(msgs[0].Data)
	for _, s := range []string{"active_memberships", "14 now", "20 then", "threshold_override"} {
		if !strings.Contains(body, s) {
			t.Errorf("the mail should say %q:\n%s", s, body)
		}
	}

	// With mail switched off, the refusal still stands, without mail.
	e.set("threshold_send_email", "false")
	if r := e.result(e.export(x, imsOnly()), "main", IMS); r.Status != StatusRefused {
		t.Errorf("second refusal: %s", r.Status)
	}
	if len(e.smtp.Messages()) != 1 {
		t.Error("threshold_send_email false must send no mail")
	}
}

func TestIMSOverrideOnceThenReset(t *testing.T) {
	e := newEnv(t)
	x := e.exporter(WithMailer(e.mail()))
	target := publishBase(t, e, x)
	before := stat(t, e.imsPath("main"))
	breach := concat(target[:7], target[10:17])
	feedstest.FillMemberships(t, e.pool, breach)
	e.set("threshold_override", "true")

	// The publish fails (delivery): the override is not spent, since it is
	// reset in the transaction of the publish.
	x.beforeDeliver = func(deliver.File) error { return errors.New("the Moodle host is unreachable") }
	r := e.result(e.export(x, imsOnly()), "main", IMS)
	if r.Status != StatusFailed || e.setting("threshold_override") != "true" {
		t.Fatalf("a failed publish must keep the override: status %s, override %s", r.Status, e.setting("threshold_override"))
	}
	if !slices.Equal(e.published("main"), e.publishedAfterBase(target)) {
		t.Error("a failed publish must not move published_membership")
	}
	_ = before
	x.beforeDeliver = nil

	sum := e.export(x, imsOnly())
	r = e.result(sum, "main", IMS)
	if r.Status != StatusPublished || r.Drops != 6 {
		t.Fatalf("override: %s drops %d %v", r.Status, r.Drops, r.Err)
	}
	if e.setting("threshold_override") != "false" {
		t.Error("the override must be reset by the publish that used it")
	}
	if n := e.count(`SELECT count(*) FROM ctl.settings_history WHERE key = 'threshold_override' AND new_value = 'false' AND run_id = $1`, sum.RunID); n != 1 {
		t.Errorf("settings history of the reset: %d rows", n)
	}
	if n := e.count(`SELECT count(*) FROM ctl.guard_event WHERE decision = 'overridden' AND run_id = $1`, sum.RunID); n != 1 {
		t.Errorf("overridden events: %d", n)
	}
	if msgs := e.smtp.Messages(); len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "override") {
		t.Errorf("the override must be mailed: %d mails", len(msgs))
	}

	// The next breach is refused again: the override was spent.
	feedstest.FillMemberships(t, e.pool, concat(breach[:3], breach[7:10]))
	if r := e.result(e.export(x, imsOnly()), "main", IMS); r.Status != StatusRefused {
		t.Errorf("a second breach after the override: %s, want refused", r.Status)
	}
}

func (e *env) publishedAfterBase(target []feedstest.Membership) []string {
	var out []string
	for _, m := range target {
		out = append(out, m.CourseIDNumber+" "+m.UserIDNumber+" 01 1 - -")
	}
	slices.Sort(out)
	return out
}

func TestIMSCourseDropHeld(t *testing.T) {
	e := newEnv(t)
	x := e.exporter(WithMailer(e.mail()))
	target := concat(students("main", "C1", "a", 10), students("main", "C2", "b", 10), students("main", "C3", "c", 20))
	feedstest.FillMemberships(t, e.pool, target)
	if r := e.result(e.export(x, imsOnly()), "main", IMS); r.Status != StatusPublished {
		t.Fatal(r.Err)
	}
	e.applied("main")
	// C1 loses 6 of 10 (60% > 50%: a wrong mapping?), C2 loses 1 of 10;
	// overall 33 of 40 remain (82%), within the threshold.
	next := concat(target[6:10], target[10:19], target[20:40])
	dry := e.export(x, Options{Feeds: []Feed{IMS}, DryRun: true})
	if r := e.result(dry, "main", IMS); r.Held != 0 || len(r.HeldCourses) != 0 {
		t.Errorf("dry run before the change should hold nothing yet: %+v", r.HeldCourses)
	}
	feedstest.FillMemberships(t, e.pool, next)
	dry = e.export(x, Options{Feeds: []Feed{IMS}, DryRun: true})
	if r := e.result(dry, "main", IMS); r.Held != 6 || len(r.HeldCourses) != 1 || r.HeldCourses[0].Course != "C1" ||
		!slices.ContainsFunc(r.Decisions, func(d string) bool { return strings.Contains(d, "course C1") }) {
		t.Errorf("the dry run should show C1 held: held %d %+v %v", r.Held, r.HeldCourses, r.Decisions)
	}
	sum := e.export(x, imsOnly())
	r := e.result(sum, "main", IMS)
	if r.Status != StatusPublished || r.Held != 6 || r.Drops != 1 {
		t.Fatalf("status %s held %d drops %d %v", r.Status, r.Held, r.Drops, r.Err)
	}
	if got := members(t, stat(t, e.imsPath("main")).data); !slices.Equal(got, []string{"C2 b010 01 drop"}) {
		t.Errorf("only C2's drop goes out: %v", got)
	}
	pub := e.published("main")
	for _, u := range []string{"a001", "a006"} {
		if !slices.Contains(pub, "C1 "+u+" 01 1 - -") {
			t.Errorf("held drop of %s must stay published", u)
		}
	}
	if slices.Contains(pub, "C2 b010 01 1 - -") {
		t.Error("C2's drop went out and must leave published_membership")
	}
	if n := e.count(`SELECT count(*) FROM ctl.guard_event WHERE guard = 'course_drop' AND decision = 'held' AND subject = 'C1'
		AND previous = 10 AND current = 4 AND notified AND run_id = $1`, sum.RunID); n != 1 {
		t.Errorf("held events: %d", n)
	}
	msgs := e.smtp.Messages()
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "C1: 6 of 10 students") {
		t.Errorf("the hold must be mailed with the course: %d mails", len(msgs))
	}
	// Held again the next night while the mapping is not fixed.
	e.applied("main")
	if r := e.result(e.export(x, imsOnly()), "main", IMS); r.Held != 6 || r.Status != StatusEmpty {
		t.Errorf("next night: held %d status %s", r.Held, r.Status)
	}
}

func TestIMSInterruptedWriteKeepsLastFileAndState(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(e *env, x *Exporter, cancel context.CancelFunc)
	}{
		{"writer fails", func(e *env, x *Exporter, _ context.CancelFunc) {
			x.afterMember = func(n int) error {
				if n == 5 {
					return errors.New("disk full")
				}
				return nil
			}
		}},
		{"context cancelled", func(e *env, x *Exporter, cancel context.CancelFunc) {
			x.afterMember = func(n int) error {
				if n == 5 {
					cancel()
				}
				return nil
			}
		}},
		{"delivery fails", func(e *env, x *Exporter, _ context.CancelFunc) {
			missing := filepath.Join(e.dir, "no", "such", "dir")
			WithTarget(&deliver.Dir{Path: missing})(x)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			x := e.exporter()
			delivered := t.TempDir()
			WithTarget(&deliver.Dir{Path: delivered})(x)
			target := publishBase(t, e, x)
			last := stat(t, e.imsPath("main"))
			lastDelivered := stat(t, filepath.Join(delivered, IMSFileName("main")))
			if !lastDelivered.exists {
				t.Fatal("the base export was not delivered")
			}
			pub := e.published("main")
			arch := e.archiveEntries()
			runs := e.count(`SELECT count(*) FROM ctl.export_run WHERE status = 'published'`)

			feedstest.FillMemberships(t, e.pool, concat(target[1:], students("main", "C3", "c", 8)))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tc.setup(e, x, cancel)
			sum := e.exportCtx(ctx, x, imsOnly())
			r := e.result(sum, "main", IMS)
			if r.Status != StatusFailed {
				t.Fatalf("status %s, want failed", r.Status)
			}
			if tc.name != "delivery fails" && !stat(t, e.imsPath("main")).same(last) {
				t.Error("the last file in exports.dir must be intact")
			}
			if !stat(t, filepath.Join(delivered, IMSFileName("main"))).same(lastDelivered) {
				t.Error("the delivered file must be intact")
			}
			if _, err := os.Stat(e.imsPath("main") + ".tmp"); !os.IsNotExist(err) {
				t.Error("a temporary file was left behind")
			}
			if !slices.Equal(e.published("main"), pub) {
				t.Error("published_membership must be intact")
			}
			if n := e.count(`SELECT count(*) FROM ctl.export_run WHERE status = 'published'`); n != runs {
				t.Error("no export may be recorded as published")
			}
			es := e.archiveEntries()
			if tc.name != "delivery fails" && len(es) != len(arch) {
				t.Errorf("archive entries %d, want %d", len(es), len(arch))
			}
			bad, err := deliver.Archive{Root: filepath.Join(e.dir, "archive")}.Verify(context.Background())
			if err != nil || len(bad) != 0 {
				t.Errorf("the archive must verify: %v %v", bad, err)
			}
			// Fixed, the next export sends the whole delta.
			x.afterMember = nil
			WithTarget(&deliver.Dir{Path: delivered})(x)
			r = e.result(e.export(x, imsOnly()), "main", IMS)
			if r.Status != StatusPublished || r.Adds != 8 || r.Drops != 1 {
				t.Errorf("after the failure: %s adds %d drops %d %v", r.Status, r.Adds, r.Drops, r.Err)
			}
		})
	}
}

func TestIMSDryRunWritesNothing(t *testing.T) {
	e := newEnv(t)
	x := e.exporter(WithMailer(e.mail()))
	target := publishBase(t, e, x)
	feedstest.FillMemberships(t, e.pool, concat(target[:5], target[10:12]))
	e.set("threshold_override", "true")
	e.set("course_drop_percent", "100")
	tables := []string{"ctl.export_run", "ctl.guard_event", "ctl.published_membership", "ctl.run", "ctl.run_step", "ctl.settings_history"}
	counts := map[string]int64{}
	for _, tb := range tables {
		counts[tb] = e.count(`SELECT count(*) FROM ` + tb)
	}
	file := stat(t, e.imsPath("main"))
	entries, _ := os.ReadDir(e.dir)
	sum := e.export(x, Options{DryRun: true})
	r := e.result(sum, "main", IMS)
	if r.Status != StatusDryRun || r.Drops != 13 || len(r.SampleDrops) == 0 {
		t.Errorf("dry run: %s drops %d samples %v", r.Status, r.Drops, r.SampleDrops)
	}
	if !slices.ContainsFunc(r.Decisions, func(d string) bool { return strings.Contains(d, "would pass once") }) {
		t.Errorf("the dry run should say the override would let it through: %v", r.Decisions)
	}
	for _, tb := range tables {
		if n := e.count(`SELECT count(*) FROM ` + tb); n != counts[tb] {
			t.Errorf("%s: %d rows, was %d", tb, n, counts[tb])
		}
	}
	if e.setting("threshold_override") != "true" {
		t.Error("a dry run must not spend the override")
	}
	if !stat(t, e.imsPath("main")).same(file) {
		t.Error("a dry run must not write the file")
	}
	if after, _ := os.ReadDir(e.dir); len(after) != len(entries) {
		t.Errorf("a dry run created files: %v", after)
	}
	if len(e.smtp.Messages()) != 0 {
		t.Error("a dry run sends no mail")
	}
	var b strings.Builder
	sum.Write(&b)
	for _, s := range []string{"DRY RUN", "main/ims", "13 drops", "would pass once", "C1: a006"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("the report should show %q:\n%s", s, b.String())
		}
	}
}

func TestEnvironmentGuardRefusesFileFeeds(t *testing.T) {
	e := newEnv(t)
	e.cfg.Moodle[0].Environment = "production"
	feedstest.FillMemberships(t, e.pool, students("main", "C1", "a", 3))
	e.cfg.Moodle[0].OneRoster = true
	sum := e.export(e.exporter(), Options{})
	for _, f := range All {
		if f == Flatfile {
			continue // the site takes IMS
		}
		if r := e.result(sum, "main", f); r.Status != StatusRefused {
			t.Errorf("%s: %s, want refused", f, r.Status)
		}
	}
	if _, err := os.Stat(e.imsPath("main")); !os.IsNotExist(err) {
		t.Error("nothing may be written for a site of another environment")
	}
	if n := e.count(`SELECT count(*) FROM ctl.guard_event WHERE guard = 'environment' AND decision = 'refused'`); n != 1 {
		t.Errorf("environment events: %d", n)
	}
	var ec interface{ ExitCode() int }
	if !errors.As(sum.Err(), &ec) || ec.ExitCode() != 3 {
		t.Errorf("exit code of %v", sum.Err())
	}
}

func TestIMSRefusedSiteDoesNotStopOthers(t *testing.T) {
	e := newEnv(t)
	e.cfg.Moodle = append(e.cfg.Moodle, e.cfg.Moodle[0])
	e.cfg.Moodle[1].Name, e.cfg.Moodle[1].IMSTarget = "second", "moodle-second"
	x := e.exporter()
	feedstest.FillMemberships(t, e.pool, concat(students("main", "C1", "a", 10), students("second", "C1", "a", 10)))
	e.export(x, imsOnly())
	// main collapses; second gains.
	feedstest.FillMemberships(t, e.pool, concat(students("main", "C1", "a", 2), students("second", "C1", "a", 12)))
	sum := e.export(x, imsOnly())
	if r := e.result(sum, "main", IMS); r.Status != StatusRefused {
		t.Errorf("main: %s", r.Status)
	}
	if r := e.result(sum, "second", IMS); r.Status != StatusPublished || r.Adds != 2 {
		t.Errorf("second: %s adds %d", r.Status, r.Adds)
	}
	if run, err := ledger.RunByID(context.Background(), e.pool, sum.RunID); err != nil || run.Status != ledger.Refused {
		t.Errorf("the run is recorded as %s, not refused (%v)", run.Status, err)
	}
}

func TestIMSWriterRefusalsStayUnpublished(t *testing.T) {
	e := newEnv(t)
	target := concat(students("main", "C1", "a", 3), []feedstest.Membership{
		{Instance: "main", CourseIDNumber: "C1", UserIDNumber: "bad&id", RoleType: "01", Status: 1},
		{Instance: "main", CourseIDNumber: "C<2", UserIDNumber: "a001", RoleType: "01", Status: 1},
		{Instance: "main", CourseIDNumber: "C1", UserIDNumber: "a009", RoleType: "manager", Status: 1}, // unmapped role
	})
	feedstest.FillMemberships(t, e.pool, target)
	sum := e.export(e.exporter(), imsOnly())
	r := e.result(sum, "main", IMS)
	if r.Status != StatusPublished || r.Skipped != 2 {
		t.Fatalf("status %s skipped %d %v", r.Status, r.Skipped, r.Notes)
	}
	if got := members(t, stat(t, e.imsPath("main")).data); len(got) != 3 {
		t.Errorf("file members: %v", got)
	}
	if pub := e.published("main"); len(pub) != 3 {
		t.Errorf("refused members must not be recorded as published: %v", pub)
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "role manager") }) {
		t.Errorf("the unmapped role should be noted: %v", r.Notes)
	}
	// Every member the writer left out is named, in the ledger too.
	if len(r.LeftOut) != 2 || !strings.Contains(strings.Join(r.LeftOut, "\n"), "bad&id") || !strings.Contains(strings.Join(r.LeftOut, "\n"), "C<2") {
		t.Errorf("left out: %q", r.LeftOut)
	}
	if n := e.steps(sum.RunID, func(s ledger.StepSummary) bool {
		var d struct {
			LeftOut []json.RawMessage `json:"left_out"`
		}
		return s.Key.Entity == "ims" && json.Unmarshal(s.Detail, &d) == nil && len(d.LeftOut) == 2
	}); n != 1 {
		t.Errorf("the ledger step does not name every member left out (%d steps)", n)
	}
}

// Persons the writer refuses (a username longer than Moodle's column) are
// all named, not only the first.
func TestIMSPersonsLeftOutAreAllNamed(t *testing.T) {
	e := newEnv(t)
	e.cfg.Moodle[0].IMSPersons = true
	feedstest.FillMemberships(t, e.pool, students("main", "C1", "a", 3))
	if _, err := e.pool.Exec(context.Background(), `DROP TABLE IF EXISTS mart.exp_ims_person; CREATE TABLE mart.exp_ims_person AS
		SELECT 'main'::text AS instance, 'a00' || i AS user_idnumber,
		       CASE WHEN i < 3 THEN repeat('x', 100 + i) ELSE 'a00' || i END AS username,
		       'ldap'::text AS auth, 'Given'::text AS given, 'Family'::text AS family, ''::text AS email
		FROM generate_series(1, 3) i`); err != nil {
		t.Fatal(err)
	}
	r := e.result(e.export(e.exporter(), imsOnly()), "main", IMS)
	if r.Status != StatusPublished {
		t.Fatalf("%s %v", r.Status, r.Err)
	}
	left := strings.Join(r.LeftOut, "\n")
	if len(r.LeftOut) != 2 || !strings.Contains(left, "user a001") || !strings.Contains(left, "user a002") ||
		!strings.Contains(left, "longer than Moodle's user.username (100)") {
		t.Errorf("left out: %q", r.LeftOut)
	}
}

func TestIMSDuplicateTargetRowsFail(t *testing.T) {
	e := newEnv(t)
	rows := students("main", "C1", "a", 2)
	feedstest.FillMemberships(t, e.pool, append(rows, rows[0]))
	r := e.result(e.export(e.exporter(), imsOnly()), "main", IMS)
	if r.Status != StatusFailed || !strings.Contains(r.Err.Error(), "duplicated") {
		t.Errorf("status %s err %v", r.Status, r.Err)
	}
	if _, err := os.Stat(e.imsPath("main")); !os.IsNotExist(err) {
		t.Error("no file from a broken mart")
	}
}

// TestExportCreatesAMissingDirectory: the first export on a new host makes
// exports.dir (not world-readable) instead of failing; a dry run makes
// nothing.
func TestExportCreatesAMissingDirectory(t *testing.T) {
	e := newEnv(t)
	e.cfg.Exports.Dir = filepath.Join(e.dir, "new", "out")
	feedstest.FillMemberships(t, e.pool, []feedstest.Membership{
		{Instance: "main", CourseIDNumber: "GEOG0012-A6U-T1-2025", UserIDNumber: "21004567", RoleType: "student", Status: 1},
	})
	if sum, err := e.exporter().Run(context.Background(), nil, Options{DryRun: true, Feeds: []Feed{IMS}}); err != nil || sum.Err() != nil {
		t.Fatalf("dry run: %v %v", err, sum.Err())
	}
	if _, err := os.Stat(e.cfg.Exports.Dir); !os.IsNotExist(err) {
		t.Fatalf("a dry run made the export directory: %v", err)
	}
	r := e.result(e.export(e.exporter(), imsOnly()), "main", IMS)
	if r.Status != StatusPublished {
		t.Fatalf("export into a missing directory: %s %v", r.Status, r.Err)
	}
	fi, err := os.Stat(e.cfg.Exports.Dir)
	if err != nil || fi.Mode().Perm() != 0o750 {
		t.Fatalf("export directory: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.Exports.Dir, IMSFileName("main"))); err != nil {
		t.Errorf("the IMS file is not in the new directory: %v", err)
	}
}

// The per-course hold measures students: teachers in the course do not
// dilute a course losing most of its students. course_drop_override sends
// the held drops once.
func TestIMSCourseDropCountsStudentsOnly(t *testing.T) {
	e := newEnv(t)
	x := e.exporter()
	var teachers []feedstest.Membership
	for i := 1; i <= 6; i++ {
		teachers = append(teachers, feedstest.Membership{Instance: "main", CourseIDNumber: "C1", UserIDNumber: fmt.Sprintf("t%03d", i),
			RoleType: "editingteacher", Status: 1})
	}
	target := concat(students("main", "C1", "a", 4), teachers, students("main", "C2", "b", 40))
	feedstest.FillMemberships(t, e.pool, target)
	if r := e.result(e.export(x, imsOnly()), "main", IMS); r.Status != StatusPublished {
		t.Fatal(r.Err)
	}
	// C1 loses 3 of its 4 students (75%), though only 3 of its 10 members.
	next := concat(target[3:], nil)
	feedstest.FillMemberships(t, e.pool, next)
	r := e.result(e.export(x, imsOnly()), "main", IMS)
	if r.Held != 3 || len(r.HeldCourses) != 1 || r.HeldCourses[0].Students != 4 || r.HeldCourses[0].Drops != 3 {
		t.Fatalf("C1 must be held on its students: held %d %+v (%s %v)", r.Held, r.HeldCourses, r.Status, r.Err)
	}
	e.set("course_drop_override", "true")
	sum := e.export(x, imsOnly())
	r = e.result(sum, "main", IMS)
	if r.Held != 0 || r.Drops != 3 || r.Status != StatusPublished {
		t.Fatalf("with course_drop_override: held %d drops %d %s %v", r.Held, r.Drops, r.Status, r.Err)
	}
	if n := e.count(`SELECT count(*) FROM ctl.guard_event WHERE guard = 'course_drop' AND decision = 'overridden' AND subject = 'C1' AND run_id = $1`,
		sum.RunID); n != 1 {
		t.Errorf("overridden events: %d", n)
	}
	if e.setting("course_drop_override") != "false" {
		t.Error("course_drop_override did not lapse")
	}
}

// Rule (2) of the environment guard in front of the file feeds: a
// warehouse labelled for another environment, or whose label was written in
// another warehouse (a restored copy), writes no feed at all.
func TestEnvironmentGuardChecksTheWarehouseLabel(t *testing.T) {
	for name, breakLabel := range map[string]string{
		"labelled production":          `UPDATE ctl.deployment SET environment = 'production'`,
		"label from another warehouse": `UPDATE ctl.deployment SET database_oid = database_oid + 1`,
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			feedstest.FillMemberships(t, e.pool, students("main", "C1", "a", 3))
			if _, err := e.pool.Exec(context.Background(), breakLabel); err != nil {
				t.Fatal(err)
			}
			sum := e.export(e.exporter(), Options{})
			refused := 0
			for _, r := range sum.Results {
				if r.Instance != "main" {
					continue
				}
				if r.Status != StatusRefused || !strings.Contains(r.Err.Error(), "warehouse label") {
					t.Errorf("%s: %s (%v), want refused by the warehouse label", r.Feed, r.Status, r.Err)
				}
				refused++
			}
			if refused == 0 {
				t.Error("no feed of site main was decided")
			}
			if _, err := os.Stat(e.imsPath("main")); !os.IsNotExist(err) {
				t.Error("a feed was written from a warehouse that is not this deployment's")
			}
		})
	}
}

// A global deactivation (or a rollover) freezes every course: the next
// export compares only courses that are active on both sides, so a night
// that drops nothing is not refused, and a mapping activated weeks later is
// measured against its own course only.
func TestGlobalDeactivationDoesNotMisfireTheThreshold(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mapCourse := func(course string, active bool) {
		if _, err := e.pool.Exec(ctx, `INSERT INTO ctl.course_mapping (instance, course_idnumber, sis_kind, sis_key, active, created_by, updated_by)
			VALUES ('main', $1, 'module_occurrence', $1, $2, 'test', 'test')
			ON CONFLICT (instance, course_idnumber, sis_kind, sis_key, academic_year, section, course_year) DO UPDATE SET active = $2`,
			course, active); err != nil {
			t.Fatal(err)
		}
	}
	mapCourse("C1", true)
	mapCourse("C2", true)
	x := e.exporter()
	feedstest.FillMemberships(t, e.pool, concat(students("main", "C1", "a", 30), students("main", "C2", "b", 30)))
	if r := e.result(e.export(x, imsOnly()), "main", IMS); r.Status != StatusPublished {
		t.Fatalf("first: %s %v", r.Status, r.Err)
	}
	// mim mappings deactivate --all: the target lists no course any more.
	mapCourse("C1", false)
	mapCourse("C2", false)
	feedstest.FillMemberships(t, e.pool, nil)
	sum := e.export(x, imsOnly())
	if r := e.result(sum, "main", IMS); r.Status != StatusEmpty || r.Drops != 0 {
		t.Fatalf("the night after a global deactivation: %s, %d drops, %v %v", r.Status, r.Drops, r.Err, r.Decisions)
	}
	// Weeks later a new course is mapped: measured on its own.
	mapCourse("C3", true)
	feedstest.FillMemberships(t, e.pool, students("main", "C3", "c", 5))
	if r := e.result(e.export(x, imsOnly()), "main", IMS); r.Status != StatusPublished || r.Adds != 5 {
		t.Fatalf("a new mapping after the deactivation: %s, %d adds, %v %v", r.Status, r.Adds, r.Err, r.Decisions)
	}
	if n := e.count(`SELECT count(*) FROM ctl.guard_event WHERE guard = 'threshold' AND decision = 'refused'`); n != 0 {
		t.Errorf("%d threshold refusals", n)
	}
	// And a real loss in an active course is still refused.
	feedstest.FillMemberships(t, e.pool, students("main", "C3", "c", 1))
	if r := e.result(e.export(x, imsOnly()), "main", IMS); r.Status != StatusRefused {
		t.Errorf("C3 losing 4 of 5 students: %s", r.Status)
	}
}
