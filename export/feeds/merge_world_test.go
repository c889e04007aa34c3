package feeds

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/export/merge"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// plantMigratedStudent makes one active student of the site look like a
// student whose LDAP account lost the student code to a hand-made account:
// the LDAP account (the SITS username) has no idnumber, a manual account with
// the same e-mail carries the code. The merge list must keep the LDAP
// account, and the code must move to it after the merge. It returns the two
// user ids and the code.
func plantMigratedStudent(t *testing.T, w *world, site string) (ldap, manual int64, code string) {
	t.Helper()
	sim := w.Sites[site]
	st := sim.Snapshot()
	students := map[string]synth.Student{}
	for _, s := range w.In.Students {
		students[s.Code] = s
	}
	emails := map[string]int{}
	codes := map[string]int{}
	for _, u := range st.Users {
		emails[strings.ToLower(u.Email)]++
		codes[u.IDNumber]++
	}
	for _, u := range st.Users {
		s, ok := students[u.IDNumber]
		if !ok || !s.Active() || u.Auth != "ldap" || u.Username != s.Username || u.Email == "" || u.Suspended ||
			emails[strings.ToLower(u.Email)] != 1 || codes[u.IDNumber] != 1 {
			continue
		}
		code = u.IDNumber
		u.IDNumber = ""
		if err := sim.UpdateUser(u); err != nil {
			t.Fatal(err)
		}
		id, err := sim.AddUser(moodletest.User{Username: u.Username + "-mig", FirstName: u.FirstName, LastName: u.LastName,
			Email: u.Email, IDNumber: code, Auth: "manual", CustomFields: map[string]string{}})
		if err != nil {
			t.Fatal(err)
		}
		return u.ID, id, code
	}
	t.Fatal("no active student with one LDAP account to plant")
	return 0, 0, ""
}

// The merge list carried through to the end, on the real marts and the
// simulated site: it keeps the account the student logs in with; once
// tool_mergeusers (MIM's gathering) merged the pairs, the next extract sees
// them done and the list proposes none again; and the profile CSV moves the
// student code off the merged-away accounts (and onto a kept account that
// lacked it), within its budget.
func TestMergesCarriedThrough(t *testing.T) {
	if testing.Short() {
		t.Skip("the whole pipeline on the small institution (-short)")
	}
	w := newWorld(t, synth.Small)
	ctx := context.Background()
	ldap, manual, code := plantMigratedStudent(t, w, "main")
	w.extractAndTransform(t, true)
	q := func(sql string, args ...any) int64 {
		t.Helper()
		var n int64
		if err := w.e.pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}

	// Night 1: the right account is kept, and says why.
	pairs := q(`SELECT count(*) FROM mart.exp_merge_candidates WHERE instance = 'main'`)
	if pairs < 3 {
		t.Fatalf("only %d merge pairs on main", pairs)
	}
	if n := q(`SELECT count(*) FROM mart.exp_merge_candidates m JOIN stg.moodle_user u ON u.instance = m.instance AND u.user_id = m.to_userid
		WHERE m.instance = 'main' AND (u.auth <> 'ldap' OR u.username LIKE '%-old' OR u.username LIKE '%@%')`); n != 0 {
		t.Errorf("%d pairs keep a manual, suffixed or SAML account", n)
	}
	if n := q(`SELECT count(*) FROM mart.exp_merge_candidates WHERE instance = 'main' AND from_userid = $1 AND to_userid = $2
		AND keep_reason LIKE '%the SITS username'`, manual, ldap); n != 1 {
		t.Errorf("the planted student's manual account is not merged into the LDAP one for its SITS username")
	}
	// A student whose code two accounts carry is named, not silently left
	// out of the tutor table.
	if n := q(`SELECT count(*) FROM mart.dq_tutor_unmatched d JOIN mart.dq_duplicate_idnumber dup
			ON dup.instance = d.instance AND dup.idnumber = d.student_code
		WHERE d.instance = 'main' AND d.problem LIKE 'the student''s code is carried by%'`); n == 0 {
		t.Error("no student with a shared code in mart.dq_tutor_unmatched")
	}
	x := New(w.e.pool, feedsConfig(w.e.cfg), WithOperator("test"))
	sum := w.e.export(x, Options{Feeds: []Feed{Merge}})
	r := w.e.result(sum, "main", Merge)
	if r.Status != StatusPublished || r.Adds != pairs {
		t.Fatalf("merge list: %s %d pairs of %d %v", r.Status, r.Adds, pairs, r.Notes)
	}

	// Moodle's side: tool_mergeusers with MIM's gathering merges them all.
	f, err := os.Open(filepath.Join(w.e.dir, merge.FileName("main", sum.RunID)))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := w.Sites["main"].RunMergeList(f)
	f.Close()
	if err != nil || int64(len(rep.Merged)) != pairs || len(rep.Refused) != 0 {
		t.Fatalf("gathering: %v\n%s", err, strings.Join(rep.Log, "\n"))
	}
	// Running the same list again merges nothing twice.
	f, _ = os.Open(filepath.Join(w.e.dir, merge.FileName("main", sum.RunID)))
	again, err := w.Sites["main"].RunMergeList(f)
	f.Close()
	if err != nil || len(again.Merged) != 0 || int64(len(again.Refused)) != pairs {
		t.Errorf("the list run again: %v %+v", err, again.Refused)
	}

	// Night 2: the merges are seen done and never proposed again.
	w.extractAndTransform(t, false)
	if n := q(`SELECT count(*) FROM mart.exp_merge_candidates WHERE instance = 'main'`); n != 0 {
		t.Errorf("%d pairs proposed again after the merges", n)
	}
	if n := q(`SELECT count(*) FROM int.duplicate_account a JOIN ctl.merge_sent s ON s.instance = a.instance AND s.from_userid = a.user_id
		WHERE a.instance = 'main' AND a.merged AND a.merged_into = s.to_userid`); n != pairs {
		t.Errorf("%d of the %d merged accounts seen merged as sent", n, pairs)
	}
	sum = w.e.export(x, Options{Feeds: []Feed{Merge}})
	if r := w.e.result(sum, "main", Merge); r.Status != StatusEmpty {
		t.Errorf("the next merge list: %s %d pairs", r.Status, r.Adds)
	}
	clears := q(`SELECT count(*) FROM mart.exp_idnumber_carry WHERE instance = 'main' AND action = 'clear'`)
	if clears < 2 || q(`SELECT count(*) FROM mart.exp_idnumber_carry WHERE instance = 'main' AND action = 'set' AND user_id = $1`, ldap) != 1 ||
		q(`SELECT count(*) FROM mart.exp_idnumber_carry WHERE instance = 'main' AND action = 'clear' AND user_id = $1`, manual) != 1 ||
		q(`SELECT count(*) FROM mart.exp_idnumber_carry WHERE instance = 'main' AND action = 'blocked'`) != 0 {
		t.Fatalf("carry: %d clears; the planted student's set/clear missing, or some blocked", clears)
	}

	// The profile CSV moves the codes, within the budget: over it, they are
	// held back while the rest of the file goes out.
	w.Setting(t, "idnumber_carry_budget", "1")
	sum = w.e.export(x, Options{Feeds: []Feed{Profile}})
	r = w.e.result(sum, "main", Profile)
	if r.Status != StatusPublished || !strings.Contains(strings.Join(r.Decisions, "\n"), "idnumber_carry_budget main: held") {
		t.Fatalf("over budget: %s %v %v", r.Status, r.Decisions, r.Notes)
	}
	if head := readCSV(t, filepath.Join(w.e.dir, ProfileFileName("main")))[0]; strings.Contains(strings.Join(head, ","), "idnumber") {
		t.Errorf("a held carry still wrote the idnumber column: %v", head)
	}
	if n := q(`SELECT count(*) FROM ctl.guard_event WHERE instance = 'main' AND guard = 'idnumber_carry_budget' AND decision = 'held' AND current = $1`, clears); n != 1 {
		t.Errorf("%d held events recorded", n)
	}
	// The override, armed with a reason, lets them through once.
	w.Setting(t, "idnumber_carry_override", "true")
	sum = w.e.export(x, Options{Feeds: []Feed{Profile}})
	r = w.e.result(sum, "main", Profile)
	if r.Status != StatusPublished || r.Skipped != 0 || !strings.Contains(strings.Join(r.Decisions, "\n"), "idnumber_carry_budget main: overridden") {
		t.Fatalf("overridden: %s %v %v", r.Status, r.Decisions, r.Notes)
	}
	rows := readCSV(t, filepath.Join(w.e.dir, ProfileFileName("main")))
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	if _, ok := col["idnumber"]; !ok {
		t.Fatalf("no idnumber column: %v", rows[0])
	}
	// The codes are cleared first, then given.
	var order []string
	for _, row := range rows[1:] {
		if row[col["idnumber"]] == "" {
			order = append(order, "clear")
		} else if row[col["username"]] == w.user(t, "main", ldap).Username {
			order = append(order, "set")
			if row[col["idnumber"]] != code || row[col["profile_field_studentno"]] != code {
				t.Errorf("the kept account's row: %v", row)
			}
		}
	}
	if len(order) != int(clears)+1 || order[len(order)-1] != "set" || order[0] != "clear" {
		t.Errorf("carry rows in the file: %v (want %d clears, then the set)", order, clears)
	}
	// Moodle's side: tool_uploaduser applies the file; the next night sees
	// every student code on one account: nothing left to carry or merge, the
	// carry rows no longer pending, no student ambiguous any more.
	f, err = os.Open(filepath.Join(w.e.dir, ProfileFileName("main")))
	if err != nil {
		t.Fatal(err)
	}
	up, err := w.Sites["main"].UploadUsers(f)
	f.Close()
	if err != nil || up.Skipped != 0 {
		t.Fatalf("upload: %v %+v", err, up)
	}
	if u := w.user(t, "main", ldap); u.IDNumber != code {
		t.Errorf("the kept account carries %q, want %q", u.IDNumber, code)
	}
	if u := w.user(t, "main", manual); u.IDNumber != "" || !u.Suspended {
		t.Errorf("the merged-away account: idnumber %q, suspended %v", u.IDNumber, u.Suspended)
	}
	w.extractAndTransform(t, false)
	for what, sql := range map[string]string{
		"student codes on several accounts":      `SELECT count(*) FROM mart.dq_duplicate_idnumber WHERE instance = 'main' AND person_kind = 'student'`,
		"codes left to carry":                    `SELECT count(*) FROM mart.exp_idnumber_carry WHERE instance = 'main'`,
		"merges proposed":                        `SELECT count(*) FROM mart.exp_merge_candidates WHERE instance = 'main'`,
		"ambiguous students in the target":       `SELECT count(*) FROM mart.enrolment_drift WHERE instance = 'main' AND kind = 'ambiguous_user'`,
		"tutor pairs left out for a shared code": `SELECT count(*) FROM mart.dq_tutor_unmatched WHERE instance = 'main' AND problem LIKE 'the student''s code is carried by%'`,
	} {
		if n := q(sql); n != 0 {
			t.Errorf("after the codes moved, %s: %d", what, n)
		}
	}
	w.e.export(x, Options{Feeds: []Feed{Profile}})
	if n := q(`SELECT count(*) FROM ctl.pending_profile WHERE instance = 'main' AND fields ? ':idnumber'`); n != 0 {
		t.Errorf("%d moved codes still pending after Moodle showed them", n)
	}
	t.Logf("%d pairs merged; %d codes cleared, 1 given; file of %d rows", pairs, clears, len(rows)-1)
}

// user is a simulated site's account.
func (w *world) user(t *testing.T, site string, id int64) moodletest.User {
	t.Helper()
	u, ok := w.Sites[site].User(id)
	if !ok {
		t.Fatalf("site %s has no user %d", site, id)
	}
	return u
}
