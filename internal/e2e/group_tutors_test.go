package e2e_test

import (
	"testing"

	"github.com/mimwarehouse/mim/internal/synth"
)

// With group_sync_tutors, a timetable group's CMIS tutors who have an
// account of their own join its students in mart.exp_group_target, named
// with the role group tutors are enrolled with; without it, only students.
func TestGroupSyncTutorsSetting(t *testing.T) {
	w := newWorld(t, synth.Options{Scale: synth.Small})
	w.extract(t)
	w.mapAndSet(t)
	if _, err := w.Transform(t, nil); err != nil {
		t.Fatal(err)
	}
	pool := w.DB.Pool
	students := count(t, pool, `SELECT count(*) FROM mart.exp_group_target WHERE userid IS NOT NULL`)
	if n := count(t, pool, `SELECT count(*) FROM mart.exp_group_target WHERE member_role <> 'student'`); n != 0 || students == 0 {
		t.Fatalf("setting off: %d tutor rows, %d student rows", n, students)
	}
	// The tutors the target should add: a group's tutors whose UPI one
	// account carries.
	want := count(t, pool, `SELECT count(*) FROM (SELECT DISTINCT t.instance, t.group_bdo_id, u.user_id
		FROM (SELECT DISTINCT instance, group_bdo_id FROM mart.exp_group_target) t
		JOIN stg.cmis_group_tutor gt ON gt.group_bdo_id = t.group_bdo_id
		JOIN int.moodle_account_upi u ON u.instance = t.instance AND u.upi = upper(gt.staff_upi) AND u.accounts = 1) x`)
	if want == 0 {
		t.Fatal("the synthetic institution has no group tutor with an account")
	}
	w.Setting(t, "group_sync_tutors", "true")
	if _, err := w.Transform(t, nil); err != nil {
		t.Fatal(err)
	}
	if n := count(t, pool, `SELECT count(*) FROM mart.exp_group_target WHERE member_role = 'teacher'`); n != want {
		t.Errorf("%d tutor members, want %d", n, want)
	}
	if n := count(t, pool, `SELECT count(*) FROM mart.exp_group_target WHERE member_role = 'student'`); n != students {
		t.Errorf("students changed: %d, was %d", n, students)
	}
}
