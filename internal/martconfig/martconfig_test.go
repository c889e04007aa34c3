package martconfig_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/martconfig"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/wire"
)

func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "secret", true })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func table(t *testing.T, db *pgtest.DB, sql string) string {
	t.Helper()
	var s *string
	if err := db.Pool.QueryRow(context.Background(), sql).Scan(&s); err != nil {
		t.Fatal(err)
	}
	if s == nil {
		return ""
	}
	return *s
}

func TestWriteReplacesTheCopyInTheTransaction(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	const sites = `SELECT string_agg(instance || '=' || group_prefix, ',' ORDER BY instance) FROM ctl.config_site`
	const roles = `SELECT string_agg(role || '=' || roletype, ',' ORDER BY role) FROM ctl.config_ims_role`
	// The migration seeds the configuration's defaults.
	if got := table(t, db, roles); got != "editingteacher=02,student=01,teacher=08" {
		t.Errorf("seeded roles %q", got)
	}

	cfg := parse(t, `environment: test
moodle:
  - {name: main, url: "https://moodle.example.ac.uk", token: "${T}", environment: test}
  - {name: ioe, url: "https://ioe.example.ac.uk", token: "${T}", environment: test, group_prefix: "cmis-", main_auth: saml2}
exports: {ims_roles: {student: "01", ta: "08"}, merge: {keep: [main_auth, sis_username]}}
`)
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	summary, err := martconfig.Write(ctx, tx, wire.MartConfig(cfg))
	if err != nil || summary != "2 sites, 2 IMS roles, 3 merge keep rules" {
		t.Fatalf("%q, %v", summary, err)
	}
	// Nothing is visible outside the transaction until it commits.
	if got := table(t, db, sites); got != "" {
		t.Errorf("uncommitted sites visible: %q", got)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := table(t, db, sites); got != "ioe=cmis-,main=mim:" {
		t.Errorf("sites %q", got)
	}
	// The main authentication when set (else the marts infer it), and the
	// keep rules in order, newest added to make the choice total.
	if got := table(t, db, `SELECT string_agg(instance || '=' || coalesce(main_auth, '-'), ',' ORDER BY instance) FROM ctl.config_site`); got != "ioe=saml2,main=-" {
		t.Errorf("main_auth %q", got)
	}
	if got := table(t, db, `SELECT string_agg(rule, ',' ORDER BY position) FROM ctl.config_merge_keep`); got != "main_auth,sis_username,newest" {
		t.Errorf("keep rules %q", got)
	}
	if got := table(t, db, roles); got != "student=01,ta=08" {
		t.Errorf("roles %q", got)
	}

	// A second write replaces, it does not add.
	tx, err = db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := martconfig.Write(ctx, tx, wire.MartConfig(parse(t, "environment: test\n"))); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := table(t, db, sites); got != "" {
		t.Errorf("sites after a configuration without any: %q", got)
	}
	if got := table(t, db, roles); got != "editingteacher=02,student=01,teacher=08" {
		t.Errorf("roles after a configuration without ims_roles (the defaults): %q", got)
	}

	// A roletype the table refuses names the configuration key.
	bad := parse(t, "environment: test\n")
	bad.Exports.IMSRoles = map[string]string{"student": "9"}
	tx, err = db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := martconfig.Write(ctx, tx, wire.MartConfig(bad)); err == nil || !strings.Contains(err.Error(), `exports.ims_roles.student "9"`) {
		t.Errorf("bad roletype: %v", err)
	}
}
