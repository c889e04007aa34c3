package feeds

import (
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/export/deliver"
	"github.com/mimwarehouse/mim/export/deliver/sftptest"
	"github.com/mimwarehouse/mim/export/feeds/feedstest"
	"github.com/mimwarehouse/mim/export/guard"
	"github.com/mimwarehouse/mim/export/merge"
	"github.com/mimwarehouse/mim/export/tutor"
	"github.com/mimwarehouse/mim/internal/config"
)

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestProfileCSVOnlyChangedRows(t *testing.T) {
	e := newEnv(t)
	x := e.exporter()
	rows := []feedstest.Profile{
		{Instance: "main", Username: "mokaf21", StudentNumber: "21004567", ProgrammeCode: "UGEOSING01", UGPG: "UG"},
		{Instance: "main", Username: "jdoe19", StudentNumber: "19001234", ProgrammeCode: "TECOSMSC01", UGPG: "PG"},
		{Instance: "main", Username: "asmith", StudentNumber: "20000001", UGPG: "UG"},
	}
	feedstest.FillProfiles(t, e.pool, rows)
	only := Options{Feeds: []Feed{Profile}}
	r := e.result(e.export(x, only), "main", Profile)
	if r.Status != StatusPublished || r.Changes != 3 {
		t.Fatalf("first: %s changes %d %v %v", r.Status, r.Changes, r.Err, r.Notes)
	}
	path := filepath.Join(e.dir, ProfileFileName("main"))
	got := readCSV(t, path)
	want := [][]string{
		{"username", "profile_field_studentno", "profile_field_progcode", "profile_field_ugpg"},
		{"asmith", "20000001", "", "UG"},
		{"jdoe19", "19001234", "TECOSMSC01", "PG"},
		{"mokaf21", "21004567", "UGEOSING01", "UG"},
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("file %v, want %v", got, want)
	}
	first := stat(t, path)

	// Once Moodle has applied the file, nothing changed means no file.
	e.applied("main")
	if r := e.result(e.export(x, only), "main", Profile); r.Status != StatusEmpty || r.Changes != 0 {
		t.Errorf("unchanged: %s %d", r.Status, r.Changes)
	}
	if !stat(t, path).same(first) {
		t.Error("no change: the last file stays")
	}

	rows[1].ProgrammeCode = "TECOSMSC02"
	rows[2].UGPG = "XX" // not a menu option: refused
	rows = append(rows, feedstest.Profile{Instance: "main", Username: "newbie", StudentNumber: "25000001", UGPG: "UG"})
	feedstest.FillProfiles(t, e.pool, rows)
	r = e.result(e.export(x, only), "main", Profile)
	if r.Status != StatusPublished || r.Changes != 3 || r.Skipped != 1 {
		t.Fatalf("second: %s changes %d skipped %d %v", r.Status, r.Changes, r.Skipped, r.Notes)
	}
	got = readCSV(t, path)
	if len(got) != 3 || got[1][0] != "jdoe19" || got[1][2] != "TECOSMSC02" || got[2][0] != "newbie" {
		t.Errorf("second file: %v", got)
	}
	// The refused row was not recorded: it is tried again next time.
	if n := e.count(`SELECT count(*) FROM ctl.published_profile WHERE username = 'asmith' AND fields->>'ugpg' = 'UG'`); n != 1 {
		t.Errorf("asmith's published values must stay as they were: %d", n)
	}
	e.applied("main")
	if r := e.result(e.export(x, only), "main", Profile); r.Changes != 1 || r.Skipped != 1 {
		t.Errorf("the refused row is tried again: changes %d skipped %d", r.Changes, r.Skipped)
	}
	if r := e.result(e.export(x, Options{Feeds: []Feed{Profile}, Full: true}), "main", Profile); r.Changes != 4 {
		t.Errorf("--full writes every row: %d", r.Changes)
	}
}

func TestTutorTableSwappedAndGuarded(t *testing.T) {
	e := newEnv(t)
	x := e.exporter()
	var pairs []feedstest.TutorPair
	for i := range 10 {
		pairs = append(pairs, feedstest.TutorPair{Instance: "main", Role: "personaltutor", Tutor: "S00421" + string(rune('0'+i%3)),
			Student: "2100000" + string(rune('0'+i)), StudentCode: "2100000" + string(rune('0'+i)), Source: "sits"})
	}
	bad := feedstest.TutorPair{Instance: "main", Role: "personaltutor", Tutor: "S|1", Student: "21009999"}
	feedstest.FillTutors(t, e.pool, append(pairs, bad))
	only := Options{Feeds: []Feed{Tutor}}
	r := e.result(e.export(x, only), "main", Tutor)
	if r.Status != StatusPublished || r.Rows != 10 || r.Skipped != 1 {
		t.Fatalf("first: %s rows %d skipped %d %v", r.Status, r.Rows, r.Skipped, r.Err)
	}
	view := tutor.ViewName("main")
	if n := e.count(`SELECT count(*) FROM ` + view); n != 10 {
		t.Errorf("view %s: %d rows", view, n)
	}
	// Losing 4 of 10 pairs (60% kept < 75%) is refused and changes nothing.
	feedstest.FillTutors(t, e.pool, pairs[:6])
	r = e.result(e.export(x, only), "main", Tutor)
	var re *guard.RefusedError
	if r.Status != StatusRefused || !errors.As(r.Err, &re) || re.Guard != guard.TutorThreshold {
		t.Fatalf("refusal: %s %v", r.Status, r.Err)
	}
	if n := e.count(`SELECT count(*) FROM ` + view); n != 10 {
		t.Errorf("a refused tutor table must stay as it was: %d rows", n)
	}
	// A change within the threshold is published whole.
	next := append(slices.Clone(pairs[:9]), feedstest.TutorPair{Instance: "main", Role: "personaltutor", Tutor: "S004219", Student: "21000099"})
	feedstest.FillTutors(t, e.pool, next)
	r = e.result(e.export(x, only), "main", Tutor)
	if r.Status != StatusPublished || r.Adds != 1 || r.Drops != 1 {
		t.Fatalf("second: %s adds %d drops %d %v", r.Status, r.Adds, r.Drops, r.Err)
	}
	if n := e.count(`SELECT count(*) FROM ` + view + ` WHERE student_idnumber IN ('21000099', '21000009')`); n != 1 {
		t.Errorf("the new pair replaces the removed one: %d", n)
	}
}

func TestTutorPublishIsAtomicForReaders(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	feedstest.FillTutors(t, e.pool, []feedstest.TutorPair{{Instance: "main", Role: "pt", Tutor: "T1", Student: "S1"}})
	x := e.exporter()
	e.export(x, Options{Feeds: []Feed{Tutor}})
	feedstest.FillTutors(t, e.pool, []feedstest.TutorPair{
		{Instance: "main", Role: "pt", Tutor: "T1", Student: "S1"}, {Instance: "main", Role: "pt", Tutor: "T2", Student: "S2"}})
	// A publish in an open transaction: another session (Moodle) still
	// sees the old table whole.
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	p, err := tutor.Prepare(ctx, tx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, tx, e.count(`SELECT max(export_id) FROM ctl.export_run`)); err != nil {
		t.Fatal(err)
	}
	if n := e.count(`SELECT count(*) FROM ` + tutor.ViewName("main")); n != 1 {
		t.Errorf("a reader sees %d rows mid-publish, want the old 1", n)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.count(`SELECT count(*) FROM ` + tutor.ViewName("main")); n != 2 {
		t.Errorf("after the commit: %d rows, want 2", n)
	}
}

func TestMergeListWithEvidence(t *testing.T) {
	e := newEnv(t)
	feedstest.FillMerges(t, e.pool, []feedstest.MergeCandidate{
		{Instance: "main", Seq: 2, FromUserID: 12, ToUserID: 13, FromUsername: "b", ToUsername: "c", FromIDNumber: "21000002", ToIDNumber: "21000002",
			Reason: "same SITS student code", KeepReason: "kept c: the SITS username", Evidence: "idnumber 21000002 on both"},
		{Instance: "main", Seq: 1, FromUserID: 11, ToUserID: 12, FromUsername: "a", ToUsername: "b", ToIDNumber: "21000002",
			Reason: "same SITS student code"},
		{Instance: "main", Seq: 3, FromUserID: 20, ToUserID: 20, FromUsername: "x", ToUsername: "x", ToIDNumber: "1", Reason: "self"},
	})
	sum := e.export(e.exporter(), Options{Feeds: []Feed{Merge}})
	r := e.result(sum, "main", Merge)
	if r.Status != StatusPublished || r.Adds != 2 || r.Skipped != 1 {
		t.Fatalf("%s pairs %d left out %d %v %v", r.Status, r.Adds, r.Skipped, r.Err, r.Notes)
	}
	got := readCSV(t, filepath.Join(e.dir, merge.FileName("main", sum.RunID)))
	if len(got) != 3 || got[0][len(got[0])-1] != "evidence" || got[1][1] != "11" || got[2][1] != "12" ||
		got[2][8] != "kept c: the SITS username" || got[2][9] != "idnumber 21000002 on both" {
		t.Errorf("merge list %v", got)
	}
	// Every pair the list carried is recorded, so a merge done is known.
	if n := e.count(`SELECT count(*) FROM ctl.merge_sent WHERE instance = 'main' AND export_id = ` + strconv.FormatInt(r.ExportID, 10) +
		` AND ((from_userid = 11 AND to_userid = 12) OR (from_userid = 12 AND to_userid = 13 AND keep_reason = 'kept c: the SITS username'))`); n != 2 {
		t.Errorf("%d pairs recorded in ctl.merge_sent, want 2", n)
	}
	// Not merged since: the next list carries them again, and says so.
	sum = e.export(e.exporter(), Options{Feeds: []Feed{Merge}})
	r = e.result(sum, "main", Merge)
	if r.Status != StatusPublished || !strings.Contains(strings.Join(r.Notes, "\n"), "2 pairs were sent before") {
		t.Errorf("the list again: %s %v", r.Status, r.Notes)
	}
}

func TestSFTPDelivery(t *testing.T) {
	e := newEnv(t)
	srv := sftptest.Start(t, sftptest.WithPassword("mim", "s3cret-pw"))
	remote := t.TempDir()
	e.cfg.Exports.Deliver = srv.URL(remote)
	e.cfg.Exports.SFTP = config.SFTP{KnownHosts: srv.WriteKnownHosts(t), Password: "s3cret-pw"}
	feedstest.FillMemberships(t, e.pool, students("main", "C1", "a", 3))
	r := e.result(e.export(e.exporter(), imsOnly()), "main", IMS)
	if r.Status != StatusPublished || !strings.HasPrefix(r.Delivered, "sftp://") {
		t.Fatalf("%s %q %v", r.Status, r.Delivered, r.Err)
	}
	local, err := os.ReadFile(e.imsPath("main"))
	if err != nil {
		t.Fatal(err)
	}
	up, err := os.ReadFile(filepath.Join(remote, IMSFileName("main")))
	if err != nil || string(up) != string(local) {
		t.Errorf("the uploaded file differs from the local one: %v", err)
	}
	for _, n := range r.Notes {
		if strings.Contains(n, "s3cret-pw") {
			t.Error("the password leaked into a note")
		}
	}
	// A wrong host key refuses delivery; the state does not move.
	e.cfg.Exports.SFTP.KnownHosts = sftptest.Start(t, sftptest.WithPassword("mim", "s3cret-pw")).WriteKnownHosts(t)
	feedstest.FillMemberships(t, e.pool, students("main", "C1", "a", 4))
	r = e.result(e.export(e.exporter(), imsOnly()), "main", IMS)
	if r.Status != StatusFailed || !errors.Is(r.Err, deliver.ErrHostKey) {
		t.Errorf("wrong host key: %s %v", r.Status, r.Err)
	}
	if strings.Contains(r.Err.Error(), "s3cret-pw") {
		t.Error("the password leaked into the error")
	}
	if len(e.published("main")) != 3 {
		t.Error("an undelivered file must not move published_membership")
	}
}

func TestPreviewForRollover(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	x := e.exporter()
	publishBase(t, e, x)
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	// Inside the rollover's transaction the target empties.
	if _, err := tx.Exec(ctx, `DELETE FROM mart.exp_ims_membership`); err != nil {
		t.Fatal(err)
	}
	ps, err := NewPreviewer(feedsConfig(e.cfg)).PreviewExport(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Feed != "ims" || ps[1].Feed != "tutor" || ps[0].Drops != 0 || !strings.Contains(ps[0].Decision, "would be refused") {
		t.Fatalf("preview: %+v", ps)
	}
	// Every course's whole cohort going: held, not dropped.
	if !strings.Contains(ps[0].Decision, "course_drop") {
		t.Errorf("the preview should show the holds: %s", ps[0].Decision)
	}
	if _, err := tx.Exec(ctx, `SELECT 1`); err != nil {
		t.Errorf("the caller's transaction must still be usable: %v", err)
	}
}

func TestIMSPersonsWhenTheSiteOptsIn(t *testing.T) {
	e := newEnv(t)
	feedstest.FillMemberships(t, e.pool, students("main", "C1", "a", 2))
	feedstest.FillPersons(t, e.pool, []feedstest.Person{
		{Instance: "main", UserIDNumber: "25000001", Username: "mokaf25", Auth: "saml2", Given: "Mia", Family: "O'Kafor", Email: "m@example.ac.uk"},
		{Instance: "main", UserIDNumber: "25000002", Username: "UPPER", Auth: "saml2", Given: "A", Family: "B"},
	})
	r := e.result(e.export(e.exporter(), imsOnly()), "main", IMS)
	if r.Status != StatusPublished {
		t.Fatalf("the first export: %s %v", r.Status, r.Notes)
	}
	data := stat(t, e.imsPath("main")).data
	if strings.Contains(string(data), "<person") {
		t.Fatal("persons are written only for a site that opts in")
	}
	e.cfg.Moodle[0].IMSPersons = true
	feedstest.FillMemberships(t, e.pool, students("main", "C1", "a", 3))
	r = e.result(e.export(e.exporter(), imsOnly()), "main", IMS)
	if r.Status != StatusPublished || !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "1 person refused") }) {
		t.Fatalf("%s %v", r.Status, r.Notes)
	}
	data = stat(t, e.imsPath("main")).data
	if n := strings.Count(string(data), "<person recstatus=\"1\">"); n != 1 || !strings.Contains(string(data), "<family>O'Kafor</family>") {
		t.Errorf("persons in the file: %d\n%s", n, data)
	}
	if members(t, data) == nil {
		t.Error("no members")
	}
}
