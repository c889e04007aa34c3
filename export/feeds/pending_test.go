package feeds

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/export/feeds/feedstest"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// pendingCount counts a site's pending changes of a feed.
func (e *env) pendingCount(table, instance string) int64 {
	e.t.Helper()
	return e.count(`SELECT count(*) FROM `+table+` WHERE instance = $1`, instance)
}

// "Published is not applied", the test: an IMS delta lost before
// Moodle's task read it (replaced, deleted, the site's cron down) is fully
// re-sent by the next one, though nothing changed since: no extract has
// shown its changes applied.
func TestLostDeltaFileIsFullyResent(t *testing.T) {
	e := newEnv(t)
	x := e.exporter()
	feedstest.FillMemberships(t, e.pool, concat(students("main", "C1", "a", 4), students("main", "C2", "b", 3)))
	if r := e.result(e.export(x, imsOnly()), "main", IMS); r.Status != StatusPublished || r.Adds != 7 {
		t.Fatalf("first: %s %d adds %v", r.Status, r.Adds, r.Err)
	}
	lost := members(t, stat(t, e.imsPath("main")).data)
	if err := os.Remove(e.imsPath("main")); err != nil {
		t.Fatal(err)
	}
	// A new student arrives: the next delta has 1 add, and carries the 7 again.
	feedstest.FillMemberships(t, e.pool, concat(students("main", "C1", "a", 5), students("main", "C2", "b", 3)))
	r := e.result(e.export(x, imsOnly()), "main", IMS)
	got := members(t, stat(t, e.imsPath("main")).data)
	want := append(slices.Clone(lost), "C1 a005 01 enrol")
	slices.Sort(want)
	if r.Status != StatusPublished || r.Adds != 1 || !slices.Equal(got, want) {
		t.Fatalf("the next file (%s, %d adds):\n%s\nwant\n%s", r.Status, r.Adds, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Nothing new, still nothing seen: still sent, every night.
	r = e.result(e.export(x, imsOnly()), "main", IMS)
	if got := members(t, stat(t, e.imsPath("main")).data); r.Status != StatusPublished || !slices.Equal(got, want) {
		t.Errorf("third night: %s %v", r.Status, got)
	}
	if n := e.count(`SELECT count(*) FROM ctl.pending_membership WHERE sends = 3 AND misses = 0`); n != 7 {
		t.Errorf("%d of the lost file's changes sent three times", n)
	}
}

// On the real pipeline: the changes of a lost file that Moodle does not
// show are carried by the next; what Moodle already had (most of a first
// file's enrolments, made before MIM) is seen applied by the first extract
// and not sent again. Once Moodle applies the next file and an extract
// shows it, nothing is pending and the next delta is empty.
func TestLostIMSFileIsSentAgainByTheNext(t *testing.T) {
	w, e, x := extractedWorld(t)
	r := e.result(e.export(x, imsOnly()), "main", IMS)
	if r.Status != StatusPublished || r.Adds == 0 {
		t.Fatalf("first export: %s %d adds", r.Status, r.Adds)
	}
	lost := members(t, stat(t, e.imsPath("main")).data)
	if n := e.pendingCount("ctl.pending_membership", "main"); n != int64(len(lost)) {
		t.Errorf("%d pending after the first file, which carried %d", n, len(lost))
	}
	// What Moodle did not have when the file was sent.
	rows, _ := e.pool.Query(context.Background(), `SELECT course_idnumber || ' ' || user_idnumber || ' ' || roletype
		FROM ctl.pending_membership WHERE instance = 'main' AND NOT was_there ORDER BY 1`)
	notThere, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	man, _ := w.In.Manifest.Site("main")
	if len(notThere) < man.DriftMissing {
		t.Fatalf("%d changes Moodle did not have, the manifest plants %d missing enrolments", len(notThere), man.DriftMissing)
	}
	// The file is lost before Moodle's task reads it.
	if err := os.Remove(e.imsPath("main")); err != nil {
		t.Fatal(err)
	}
	// The next night: Moodle (unchanged) is read again; the export carries
	// every change of the lost file Moodle does not have, though none is new.
	w.extractAndTransform(t, false)
	e.set(SettingPendingNights, "1")
	sum := e.export(x, imsOnly())
	r = e.result(sum, "main", IMS)
	// The summary (what the run mails) says it, with the cause.
	var text strings.Builder
	sum.Write(&text)
	if !strings.Contains(text.String(), "NOT APPLIED IN MOODLE: ") || !strings.Contains(text.String(), "may not be running") {
		t.Errorf("the summary does not report the pending changes:\n%s", text.String())
	}
	var again []string
	for _, m := range members(t, stat(t, e.imsPath("main")).data) {
		f := strings.Fields(m)
		again = append(again, strings.Join(f[:3], " "))
	}
	slices.Sort(again)
	if r.Status != StatusPublished || r.Adds != 0 || !slices.Equal(again, notThere) {
		t.Fatalf("the next export (%s, %d adds) carries\n%s\nwant\n%s", r.Status, r.Adds, strings.Join(again, "\n"), strings.Join(notThere, "\n"))
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "carried again") }) {
		t.Errorf("notes do not say the changes are carried again: %v", r.Notes)
	}
	// One extract since has not shown them: with pending_alert_nights 1
	// they are reported, as Moodle not reading the files.
	if r.Pending == nil || r.Pending.Long != int64(len(notThere)) || !strings.Contains(r.Pending.Cause, "may not be running") {
		t.Errorf("pending report: %+v", r.Pending)
	}
	rep, err := PendingReport(context.Background(), e.pool)
	if err != nil || len(rep) == 0 || rep[0].Instance != "main" || rep[0].Long != int64(len(notThere)) {
		t.Errorf("PendingReport: %+v %v", rep, err)
	}
	// Moodle's task reads this one; an extract shows it; nothing is pending.
	cron, err := w.Sites["main"].IMSCron(moodletest.IMSSettings{RestrictTarget: "main", Unenrol: true}).Run(e.imsPath("main"))
	if err != nil || cron.Skipped != "" || cron.UnknownUsers+cron.UnknownCourses != 0 {
		t.Fatalf("cron: %v %v", cron, err)
	}
	w.extractAndTransform(t, false)
	r = e.result(e.export(x, imsOnly()), "main", IMS)
	if r.Status != StatusEmpty || e.pendingCount("ctl.pending_membership", "main") != 0 {
		t.Errorf("after Moodle applied it: %s, %d pending %v", r.Status, e.pendingCount("ctl.pending_membership", "main"), r.Notes)
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "now seen applied") }) {
		t.Errorf("notes do not say what was seen applied: %v", r.Notes)
	}
}

// The same for profile values: a CSV tool_uploaduser never ran on is
// carried whole by the next; a site's upload then applies it and the
// extract after shows it.
func TestLostProfileCSVIsSentAgainByTheNext(t *testing.T) {
	w, e, x := extractedWorld(t)
	only := Options{Feeds: []Feed{Profile}, Instances: []string{"main"}}
	r := e.result(e.export(x, only), "main", Profile)
	path := filepath.Join(e.dir, ProfileFileName("main"))
	first := readCSV(t, path)
	if r.Status != StatusPublished || len(first) < 2 {
		t.Fatalf("first export: %s %d rows", r.Status, len(first))
	}
	w.extractAndTransform(t, false)
	r = e.result(e.export(x, only), "main", Profile)
	if again := readCSV(t, path); r.Status != StatusPublished || !slices.EqualFunc(again, first, slices.Equal) {
		t.Fatalf("the next export (%s) carries %d rows, the lost file %d", r.Status, len(again), len(first))
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	up, err := w.Sites["main"].UploadUsers(f)
	f.Close()
	if err != nil || up.Updated != len(first)-1 {
		t.Fatalf("upload: %+v %v", up, err)
	}
	w.extractAndTransform(t, false)
	r = e.result(e.export(x, only), "main", Profile)
	if r.Status != StatusEmpty || e.pendingCount("ctl.pending_profile", "main") != 0 {
		t.Errorf("after the upload: %s, %d pending %v", r.Status, e.pendingCount("ctl.pending_profile", "main"), r.Notes)
	}
}

// Defect 3 of the real-Moodle comparison: the profile CSV named a field
// the site does not have, Moodle rejected the whole file, and MIM recorded
// every row as published. A field the site is not known to have (no
// account holds a value, and it is not in known_profile_fields) fails the
// site's profile feed: no file, nothing recorded, the field named.
func TestProfileFieldTheSiteDoesNotHave(t *testing.T) {
	e := newEnv(t)
	e.cfg.Exports.ProfileFields = append(e.cfg.Exports.ProfileFields, e.cfg.Exports.ProfileFields[0])
	e.cfg.Exports.ProfileFields[3].Shortname = "nosuchfield"
	fillProfiles(t, e)
	r := e.result(e.export(e.exporter(), Options{Feeds: []Feed{Profile}}), "main", Profile)
	var pe *ProfileFieldError
	if r.Status != StatusFailed || !asProfileFieldError(r.Err, &pe) || !slices.Equal(pe.Unknown, []string{"nosuchfield"}) ||
		!strings.Contains(r.Err.Error(), "known_profile_fields") {
		t.Fatalf("%s: %v", r.Status, r.Err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, ProfileFileName("main"))); !os.IsNotExist(err) {
		t.Error("a profile CSV was written")
	}
	if n := e.count(`SELECT count(*) FROM ctl.published_profile`); n != 0 {
		t.Errorf("%d rows recorded as published", n)
	}
	// Declared, it goes out.
	e.cfg.Moodle[0].KnownProfileFields = append(e.cfg.Moodle[0].KnownProfileFields, "nosuchfield")
	if r := e.result(e.export(e.exporter(), Options{Feeds: []Feed{Profile}}), "main", Profile); r.Status != StatusPublished {
		t.Errorf("declared: %s %v", r.Status, r.Err)
	}
}

func fillProfiles(t *testing.T, e *env) {
	t.Helper()
	feedstest.FillProfiles(t, e.pool, []feedstest.Profile{
		{Instance: "main", Username: "mokaf21", StudentNumber: "21004567", ProgrammeCode: "UGEOSING01", UGPG: "UG"},
		{Instance: "main", Username: "jdoe19", StudentNumber: "19001234", ProgrammeCode: "TECOSMSC01", UGPG: "PG"},
	})
}

func asProfileFieldError(err error, target **ProfileFieldError) bool { return errors.As(err, target) }

// Moodle read the file (its adds were applied) but kept the enrolments the
// file dropped (imsunenrol is off on the site): the drops stay pending,
// carried by every file, and once pending_alert_nights extracts have not
// shown them they are reported as drops Moodle read and did not act on.
func TestDropsMoodleKeepsArePendingWithTheirCause(t *testing.T) {
	ctx := context.Background()
	w, e, x := extractedWorld(t)
	cron := w.Sites["main"].IMSCron(moodletest.IMSSettings{RestrictTarget: "main"}) // imsunenrol off
	if r := e.result(e.export(x, imsOnly()), "main", IMS); r.Status != StatusPublished {
		t.Fatalf("first: %s %v", r.Status, r.Err)
	}
	if _, err := cron.Run(e.imsPath("main")); err != nil {
		t.Fatal(err)
	}
	w.extractAndTransform(t, false)
	// One student leaves SITS: their memberships are dropped.
	var student string
	if err := e.pool.QueryRow(ctx, `SELECT user_idnumber FROM ctl.published_membership
		WHERE instance = 'main' AND roletype = '01' AND status = 1 ORDER BY user_idnumber LIMIT 1`).Scan(&student); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `DELETE FROM sismgr.ucl_bdo_v_moodle_student_enrl WHERE student_code = $1`, student); err != nil {
		t.Fatal(err)
	}
	w.extractAndTransform(t, true)
	e.set(SettingPendingNights, "1")
	r := e.result(e.export(x, imsOnly()), "main", IMS)
	if r.Status != StatusPublished || r.Drops == 0 || e.pendingCount("ctl.pending_membership", "main") != r.Drops {
		t.Fatalf("drops: %s %d, %d pending (%v)", r.Status, r.Drops, e.pendingCount("ctl.pending_membership", "main"), r.Notes)
	}
	if _, err := cron.Run(e.imsPath("main")); err != nil {
		t.Fatal(err)
	}
	w.extractAndTransform(t, false)
	r = e.result(e.export(x, imsOnly()), "main", IMS)
	if got := members(t, stat(t, e.imsPath("main")).data); r.Status != StatusPublished || int64(len(got)) != e.pendingCount("ctl.pending_membership", "main") ||
		!strings.Contains(strings.Join(got, "\n"), student+" 01 drop") {
		t.Errorf("the kept drops are carried again: %s %v", r.Status, got)
	}
	if r.Pending == nil || r.Pending.Long == 0 || !strings.Contains(r.Pending.Cause, "imsunenrol is off") {
		t.Errorf("pending: %+v", r.Pending)
	}
}

// extractedWorld is the small institution extracted and transformed once,
// and an exporter over it (skipped with -short).
func extractedWorld(t *testing.T) (*world, *env, *Exporter) {
	t.Helper()
	if testing.Short() {
		t.Skip("the whole pipeline on the small institution (-short)")
	}
	w := newWorld(t, synth.Small)
	w.extractAndTransform(t, true)
	return w, w.e, New(w.e.pool, feedsConfig(w.e.cfg), WithOperator("test"))
}
