package settings_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/settings"
)

func TestIncumbentDefaults(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	want := map[string]string{
		"threshold_percent": "75", "threshold_override": "false", "threshold_send_email": "true",
		"threshold_email": "", "min_mod_occ_year": "0", "course_drop_percent": "50", "group_delete_budget": "50",
	}
	all, err := settings.List(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range all {
		got[s.Key] = s.Value
		if s.Description == "" {
			t.Errorf("setting %s has no description", s.Key)
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for _, k := range []string{"threshold_email_subject", "threshold_email_message", "academic_year", "group_delete_override"} {
		if _, ok := got[k]; !ok {
			t.Errorf("setting %s missing", k)
		}
	}
}

func TestSetValidatesAndKeepsHistory(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	old, err := settings.Set(ctx, db.Pool, "threshold_percent", "80%", "alice@host", "agreed at CAB", nil)
	if err != nil || old != "75" {
		t.Fatalf("set: %q %v", old, err)
	}
	if n, _ := settings.Int(ctx, db.Pool, "threshold_percent"); n != 80 {
		t.Errorf("threshold_percent = %d", n)
	}
	var inv *settings.InvalidError
	for _, c := range [][2]string{{"threshold_percent", "101"}, {"threshold_override", "maybe"}, {"min_mod_occ_year", "25"},
		{"threshold_email", "not an address"}, {"group_delete_budget", "-1"}} {
		if _, err := settings.Set(ctx, db.Pool, c[0], c[1], "alice", "", nil); !errors.As(err, &inv) {
			t.Errorf("set %s=%s: %v, want InvalidError", c[0], c[1], err)
		}
	}
	var unk *settings.UnknownError
	if _, err := settings.Set(ctx, db.Pool, "threshold_pct", "80", "alice", "", nil); !errors.As(err, &unk) || len(unk.Known) < 10 {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := settings.Set(ctx, db.Pool, "threshold_override", "yes", "bob", "rollover 2026", nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := settings.Bool(ctx, db.Pool, "threshold_override"); !b {
		t.Error("override not set")
	}
	var n int
	var by, reason string
	db.Pool.QueryRow(ctx, `SELECT count(*) OVER (), changed_by, reason FROM ctl.settings_history ORDER BY change_id DESC LIMIT 1`).Scan(&n, &by, &reason)
	if n != 2 || by != "bob" || reason != "rollover 2026" {
		t.Errorf("history: %d rows, last by %q for %q", n, by, reason)
	}
}

// The one-shot override is spent only if the publishing transaction commits.
func TestTakeOneShotFollowsItsTransaction(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	settings.Set(ctx, db.Pool, "threshold_override", "true", "ops", "rollover", nil)
	runID := recordRun(t, db, "export")

	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	used, err := settings.TakeOneShot(ctx, tx, "threshold_override", runID, "mim")
	if err != nil || !used {
		t.Fatalf("take: %v %v", used, err)
	}
	tx.Rollback(ctx) // the publish failed
	if b, _ := settings.Bool(ctx, db.Pool, "threshold_override"); !b {
		t.Fatal("override spent by a rolled-back publish")
	}

	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		used, err := settings.TakeOneShot(ctx, tx, "threshold_override", runID, "mim")
		if !used {
			t.Error("override not seen")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := settings.Bool(ctx, db.Pool, "threshold_override"); b {
		t.Fatal("override not reset after the publish committed")
	}
	// Every guard of the run that used it may use it (two sites' feeds, two
	// shrunk entities); no later run can.
	nextRun := recordRun(t, db, "export")
	for _, c := range []struct {
		run  int64
		want bool
	}{{runID, true}, {nextRun, false}} {
		err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			used, err := settings.TakeOneShot(ctx, tx, "threshold_override", c.run, "mim")
			if used != c.want {
				t.Errorf("run %d: used %v, want %v", c.run, used, c.want)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var reason string
	var hRun *int64
	db.Pool.QueryRow(ctx, `SELECT reason, run_id FROM ctl.settings_history WHERE key = 'threshold_override' ORDER BY change_id DESC LIMIT 1`).Scan(&reason, &hRun)
	if hRun == nil || *hRun != runID {
		t.Errorf("history does not name the run that used the override: %q %v", reason, hRun)
	}
}

// Arming an override needs a reason; the arming keeps who, why and until
// when, and an arming past override_hours lapses unused.
func TestOverridesAreDeliberateAndLapse(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	var rr *settings.ReasonRequiredError
	if _, err := settings.Set(ctx, db.Pool, "member_remove_override", "true", "alice@host", "  ", nil); !errors.As(err, &rr) || rr.ExitCode() != 2 {
		t.Fatalf("armed without a reason: %v", err)
	}
	if on, _ := settings.Bool(ctx, db.Pool, "member_remove_override"); on {
		t.Fatal("armed without a reason")
	}
	if _, err := settings.Set(ctx, db.Pool, "member_remove_override", "false", "alice@host", "", nil); err != nil {
		t.Errorf("disarming needs no reason: %v", err)
	}
	if _, err := settings.Set(ctx, db.Pool, "member_remove_override", "true", "alice@host", "CMIS rebuilt the term 2 groups; agreed with the service owner", nil); err != nil {
		t.Fatal(err)
	}
	os, err := settings.Overrides(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(os) < 6 || os[0].Key != "member_remove_override" || !os[0].Armed || os[0].Arm == nil || os[0].Arm.ArmedBy != "alice@host" {
		t.Fatalf("overrides: %+v", os[0])
	}
	if d := os[0].Describe(); !strings.Contains(d, "ARMED by alice@host") || !strings.Contains(d, "CMIS rebuilt the term 2 groups") ||
		!strings.Contains(d, "lapses after the next run that uses it, or at") {
		t.Errorf("describe: %s", d)
	}
	if h := os[0].Arm.Expires.Sub(os[0].Arm.ArmedAt); h != 24*time.Hour {
		t.Errorf("lapses after %s, want the default 24h", h)
	}
	for _, o := range os[1:] {
		if o.Armed {
			t.Errorf("%s armed", o.Key)
		}
	}
	// A day later no run has used it: it has lapsed.
	if _, err := db.Pool.Exec(ctx, `UPDATE ctl.override_arm SET armed_at = armed_at - interval '25 hours', expires_at = expires_at - interval '25 hours'`); err != nil {
		t.Fatal(err)
	}
	runID := recordRun(t, db, "groups")
	if ok, err := settings.OneShotAvailable(ctx, db.Pool, "member_remove_override", runID); err != nil || ok {
		t.Errorf("a lapsed override is available: %v %v", ok, err)
	}
	lapsed, err := settings.LapseExpired(ctx, db.Pool, "mim run")
	if err != nil || len(lapsed) != 1 || lapsed[0] != "member_remove_override" {
		t.Fatalf("lapse: %v %v", lapsed, err)
	}
	if on, _ := settings.Bool(ctx, db.Pool, "member_remove_override"); on {
		t.Error("a lapsed override still reads true")
	}
	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		used, err := settings.TakeOneShot(ctx, tx, "member_remove_override", runID, "mim")
		if used {
			t.Error("a lapsed override was used")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	os, _ = settings.Overrides(ctx, db.Pool)
	for _, o := range os {
		if o.Key == "member_remove_override" && !strings.Contains(o.Describe(), "lapsed unused") {
			t.Errorf("describe after the lapse: %s", o.Describe())
		}
	}
}

// recordRun records a finished run of command in the ledger and returns
// its id.
func recordRun(t *testing.T, db *pgtest.DB, command string) int64 {
	t.Helper()
	ctx := context.Background()
	r, err := ledger.Begin(ctx, db.Pool, command, "test", "v", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(ctx, ledger.Succeeded, 0, nil); err != nil {
		t.Fatal(err)
	}
	return r.ID
}
