package warehouse_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/secret"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

func TestMigrateFromEmptyThenAgainIsNoop(t *testing.T) {
	db := pgtest.NewEmpty(t)
	ctx := context.Background()

	applied, err := warehouse.Migrate(ctx, db.Pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) == 0 || applied[0].Version != 1 {
		t.Fatalf("first migrate applied %+v", applied)
	}
	for _, table := range []string{"ctl.run", "ctl.run_step", "ctl.deployment", "ctl.settings", "ctl.course_mapping",
		"ctl.published_membership", "ctl.export_run", "ctl.guard_event", "ctl.moodle_site", "raw.record", "raw.record_history"} {
		var reg *string
		if err := db.Pool.QueryRow(ctx, `SELECT to_regclass($1)::text`, table).Scan(&reg); err != nil || reg == nil {
			t.Errorf("table %s missing after migrate (%v)", table, err)
		}
	}
	schemaBefore := schemaFingerprint(t, db)

	again, err := warehouse.Migrate(ctx, db.Pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Errorf("second migrate applied %+v, want nothing", again)
	}
	if after := schemaFingerprint(t, db); after != schemaBefore {
		t.Errorf("second migrate changed the schema")
	}
	st, err := warehouse.Status(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st {
		if !m.Applied {
			t.Errorf("migration %d %s not applied", m.Version, m.Name)
		}
	}
	if n, err := warehouse.Pending(ctx, db.Pool); err != nil || n != 0 {
		t.Errorf("pending = %d, %v", n, err)
	}
}

// schemaFingerprint summarises every column of MIM's schemas, and the settings.
func schemaFingerprint(t *testing.T, db *pgtest.DB) string {
	t.Helper()
	var s string
	err := db.Pool.QueryRow(context.Background(), `
		SELECT string_agg(table_schema||'.'||table_name||'.'||column_name||':'||data_type, ',' ORDER BY 1)
		  || (SELECT string_agg(key||'='||value, ',' ORDER BY key) FROM ctl.settings)
		FROM information_schema.columns WHERE table_schema IN ('raw','stg','int','mart','ctl')`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDeploymentLabelAndClaim(t *testing.T) {
	db := pgtest.NewEmpty(t)
	ctx := context.Background()
	if _, err := warehouse.Migrate(ctx, db.Pool, nil); err != nil {
		t.Fatal(err)
	}
	var mm *warehouse.MismatchError
	if err := warehouse.CheckDeployment(ctx, db.Pool, "production"); !errors.As(err, &mm) || mm.Warehouse != "" {
		t.Fatalf("unlabelled warehouse: %v", err)
	}

	d, created, err := warehouse.EnsureDeployment(ctx, db.Pool, "production", "ops@prod")
	if err != nil || !created || d.Environment != "production" {
		t.Fatalf("first label: %+v %v %v", d, created, err)
	}
	// The production backup restored into staging: staging's migrate must not relabel it.
	d, created, err = warehouse.EnsureDeployment(ctx, db.Pool, "staging", "ops@staging")
	if err != nil || created || d.Environment != "production" {
		t.Fatalf("restored copy relabelled: %+v %v %v", d, created, err)
	}
	err = warehouse.CheckDeployment(ctx, db.Pool, "staging")
	if !errors.As(err, &mm) || mm.Warehouse != "production" || mm.Configured != "staging" || mm.ExitCode() != 3 {
		t.Fatalf("check in staging: %v", err)
	}
	if !strings.Contains(err.Error(), "mim migrate --claim staging") {
		t.Errorf("the refusal should say how to claim: %v", err)
	}

	prev, err := warehouse.Claim(ctx, db.Pool, "staging", "ops@staging")
	if err != nil || prev != "production" {
		t.Fatalf("claim: %q %v", prev, err)
	}
	if err := warehouse.CheckDeployment(ctx, db.Pool, "staging"); err != nil {
		t.Errorf("after claim: %v", err)
	}
	var claims int
	var lastPrev *string
	if err := db.Pool.QueryRow(ctx, `SELECT count(*), (SELECT previous_environment FROM ctl.deployment_claim ORDER BY claim_id DESC LIMIT 1) FROM ctl.deployment_claim`).Scan(&claims, &lastPrev); err != nil {
		t.Fatal(err)
	}
	if claims != 2 || lastPrev == nil || *lastPrev != "production" {
		t.Errorf("claim history: %d claims, last previous %v", claims, lastPrev)
	}
}

func TestRunLockExcludesSecondHolder(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	first, err := warehouse.AcquireRunLock(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Release()
	// A second process is a second pool.
	other, err := warehouse.Open(ctx, db.DSN, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, err = warehouse.AcquireRunLock(ctx, other)
	var le *warehouse.LockedError
	if !errors.As(err, &le) || !strings.Contains(le.Holder, "database session") {
		t.Fatalf("second lock: %v", err)
	}
	first.Release()
	second, err := warehouse.AcquireRunLock(ctx, other)
	if err != nil {
		t.Fatalf("lock not free after release: %v", err)
	}
	second.Release()
}

func TestOpenErrorHidesPassword(t *testing.T) {
	ctx := context.Background()
	_, err := warehouse.Open(ctx, secret.DSN("postgres://mim:s3cretpw@127.0.0.1:1/none?connect_timeout=2"), 1)
	if err == nil {
		t.Fatal("connected to port 1?")
	}
	if strings.Contains(err.Error(), "s3cretpw") {
		t.Errorf("error leaks the password: %v", err)
	}
	_, err = warehouse.Open(ctx, secret.DSN("postgres://mim:s3cretpw@[bad"), 1)
	if err == nil || strings.Contains(err.Error(), "s3cretpw") {
		t.Errorf("parse error: %v", err)
	}
}

// Reset reads only the label, so a demo warehouse migrated by an older MIM
// (its ctl.deployment without the identity columns) is reset, and a
// warehouse of another environment is still refused.
func TestResetReadsOnlyTheLabel(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		env     string
		refused bool
	}{{"demo", false}, {"production", true}} {
		db := pgtest.NewEmpty(t)
		if _, err := db.Pool.Exec(ctx, `CREATE SCHEMA ctl;
			CREATE TABLE ctl.deployment (singleton boolean PRIMARY KEY DEFAULT true, environment text NOT NULL);
			INSERT INTO ctl.deployment (environment) VALUES ('`+c.env+`')`); err != nil {
			t.Fatal(err)
		}
		err := warehouse.Reset(ctx, db.Pool, "demo")
		if c.refused != (err != nil) || (c.refused && !strings.Contains(err.Error(), `environment "production"`)) {
			t.Fatalf("%s: Reset: %v", c.env, err)
		}
		var left bool
		if err := db.Pool.QueryRow(ctx, `SELECT to_regclass('ctl.deployment') IS NOT NULL`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != c.refused {
			t.Errorf("%s: ctl.deployment still there: %v", c.env, left)
		}
	}
}
