package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/drill"
	"github.com/mimwarehouse/mim/internal/pgtest"
)

// mim drill on its own scratch database: the quiet night writes nothing,
// and each drill asked for holds with the guard that should catch it.
func TestDrillHolds(t *testing.T) {
	db := pgtest.NewEmpty(t)
	t.Setenv(drill.DSNVariable, db.DSN.Reveal())
	db.Pool.Reset() // the drill copies this database: nobody may be connected
	code, out, errOut := mim(t, "drill", "--only", "members-emptied", "--only", "users-empty", "--only", "restored-production",
		"--only", "max-input-vars")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"quiet   quiet-night",
		"held    members-emptied", "completeness: cmis group_member came back empty",
		"held    users-empty", "completeness: users of site main came back empty",
		"held    restored-production", "environment guard: warehouse label",
		// PHP cut an add_group_members short: found, sent again, reported.
		"held    max-input-vars", "write verification: 6 of 27 new members not in Moodle, sent again, all took; the night is partial",
		"4 of 4 drills held; 4 writes reached Moodle",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the drill's report lacks %q:\n%s", want, out)
		}
	}
	var copies int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_database WHERE datname LIKE $1`,
		strings.ReplaceAll(db.Name, "_", `\_`)+`\_d%`).Scan(&copies); err != nil || copies != 0 {
		t.Errorf("%d copies of the drill world left behind (%v)", copies, err)
	}
	if code, _, errOut := mim(t, "drill", "--only", "nope"); code != 2 || !strings.Contains(errOut, `there is no drill "nope"`) {
		t.Errorf("unknown drill: %d %s", code, errOut)
	}
}
