package app_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"regexp"
	"testing"

	"github.com/mimwarehouse/mim/export/feeds/feedstest"
	"github.com/mimwarehouse/mim/internal/app"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/moodle/moodletest"
	"github.com/mimwarehouse/mim/moodle/moodletest/recorded"
)

// tutorReader is the login ./scripts/setup creates without privileges, as a
// site's enrol_dbuserrel login would be.
const tutorReader = "mim_tutor_reader"

// `mim check` says what enrol_dbuserrel would meet: no view (which the
// plugin reads as "0 entries", silently), a login that may not read it or
// may read every site's pairs, and a tutor role the site lacks; a site read
// through web services cannot show its roles, so there it warns.
func TestCheckTutorTable(t *testing.T) {
	wh := pgtest.New(t)
	ctx := context.Background()
	var exists bool
	if err := wh.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, tutorReader).Scan(&exists); err != nil || !exists {
		if os.Getenv("CI") == "true" || os.Getenv("MIM_REQUIRE_DB") == "1" {
			t.Fatalf("the login %s is missing (./scripts/setup creates it): %v", tutorReader, err)
		}
		t.Skipf("the login %s is missing: run ./scripts/setup", tutorReader)
	}
	ws := moodletest.NewServer(t, recorded.State(), moodletest.WithToken("goodtoken0123456789abcdef"))
	// Two sites read from their databases: one has the tutor role, one not.
	withRole := recorded.State()
	withRole.Roles = append(moodletest.StandardRoles(), moodletest.Role{ID: 9, ShortName: "personal_tutor", Name: "Personal tutor", SortOrder: 9})
	var dsn [2]string
	for i, st := range []moodletest.State{withRole, recorded.State()} {
		site, err := moodletest.New(st)
		if err != nil {
			t.Fatal(err)
		}
		db := pgtest.NewEmpty(t)
		sqlDB, err := sql.Open("pgx", db.DSN.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		defer sqlDB.Close()
		if err := site.WriteTables(ctx, sqlDB, moodletest.Postgres, moodletest.TableOptions{}); err != nil {
			t.Fatal(err)
		}
		dsn[i] = db.DSN.Reveal()
	}
	cfg := writeConfig(t, fmt.Sprintf(`environment: %s
warehouse: {dsn: "%s"}
moodle:
  - {name: main, url: "%s", token: goodtoken0123456789abcdef, environment: %s, retries: 1, tutor_db_user: %s}
  - {name: replica, url: "%s", token: goodtoken0123456789abcdef, environment: %s, retries: 1,
     kind: moodle-db, database: {driver: pgx, dsn: "%s"}}
  - {name: norole, url: "%s", token: goodtoken0123456789abcdef, environment: %s, retries: 1,
     kind: moodle-db, database: {driver: pgx, dsn: "%s"}}
exports: {dir: "%s"}
`, pgtest.Environment, wh.DSN.Reveal(), ws.URL(), pgtest.Environment, tutorReader, ws.URL(), pgtest.Environment, dsn[0],
		ws.URL(), pgtest.Environment, dsn[1], t.TempDir()))
	expect := func(out string, res ...string) {
		t.Helper()
		for _, r := range res {
			if !regexp.MustCompile(`(?m)` + r).MatchString(out) {
				t.Errorf("mim check does not match %s:\n%s", r, out)
			}
		}
	}

	// Before the first publish: no view, so no grant either.
	code, out, errOut := mim(t, "--config", cfg, "check")
	if code != app.ExitFailure {
		t.Errorf("exit %d, want 1:\n%s%s", code, out, errOut)
	}
	expect(out,
		`^FAIL\s+moodle:main tutor view\s+mim_export.personal_tutor_main does not exist: enrol_dbuserrel would read "0 entries"`,
		`^FAIL\s+moodle:main tutor grant mim_tutor_reader\s+mim_tutor_reader may not use the schema mim_export.*GRANT USAGE ON SCHEMA mim_export TO mim_tutor_reader`,
		`^warn\s+moodle:main tutor role\s+role "personal_tutor" \(setting tutor_role\) cannot be verified: Moodle's web services list no roles`,
		`^ok\s+moodle:replica tutor role\s+role "personal_tutor" exists on the site \(id 9, read from its database\)`,
		`^FAIL\s+moodle:norole tutor role\s+the site has no role "personal_tutor" \(setting tutor_role\): enrol_dbuserrel would skip every row`)

	// Published, and the login granted its site's view only: in order.
	feedstest.FillTutors(t, wh.Pool, []feedstest.TutorPair{
		{Instance: "main", Role: "personal_tutor", Tutor: "E1", Student: "21000001"},
		{Instance: "replica", Role: "personal_tutor", Tutor: "E1", Student: "21000002"},
		{Instance: "norole", Role: "personal_tutor", Tutor: "E1", Student: "21000003"},
	})
	if code, out, errOut := mim(t, "--config", cfg, "export", "--feed", "tutor"); code != 0 {
		t.Fatalf("export: %d\n%s%s", code, out, errOut)
	}
	for _, g := range []string{`GRANT USAGE ON SCHEMA mim_export TO ` + tutorReader, `GRANT SELECT ON mim_export.personal_tutor_main TO ` + tutorReader} {
		if _, err := wh.Pool.Exec(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	_, out, _ = mim(t, "--config", cfg, "check")
	expect(out,
		`^ok\s+moodle:main tutor view\s+mim_export.personal_tutor_main holds 1 pairs`,
		`^ok\s+moodle:main tutor grant mim_tutor_reader\s+mim_tutor_reader may read mim_export.personal_tutor_main and not the table of every site's pairs`,
		`^ok\s+moodle:replica tutor view\s+mim_export.personal_tutor_replica holds 1 pairs`)

	// A login that may read the table reads every site's pairs.
	if _, err := wh.Pool.Exec(ctx, `GRANT SELECT ON mim_export.personal_tutor TO `+tutorReader); err != nil {
		t.Fatal(err)
	}
	_, out, _ = mim(t, "--config", cfg, "check")
	expect(out, `^FAIL\s+moodle:main tutor grant mim_tutor_reader\s+mim_tutor_reader may read mim_export.personal_tutor, every site's pairs`)
}
