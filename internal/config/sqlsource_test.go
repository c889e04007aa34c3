package config

import (
	"strings"
	"testing"
)

func TestSQLSourceSchemaMustBeAnIdentifier(t *testing.T) {
	for schema, ok := range map[string]bool{"SISMGR": true, "demo_sismgr": true, "CMIS$OWNER": true, "": true,
		"SISMGR; DROP TABLE x": false, "sis.mgr": false, "1sis": false} {
		_, err := Parse([]byte("environment: test\nsources:\n  sits: {driver: pgx, dsn: x=y, schema: \""+schema+"\"}\n"), envOf(nil))
		if got := err == nil; got != ok {
			t.Errorf("schema %q: %v", schema, err)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), "sources.sits.schema")) {
			t.Errorf("schema %q: the problem must name sources.sits.schema: %v", schema, err)
		}
	}
}

func TestMaxBadRowsPercentZeroIsKept(t *testing.T) {
	for yaml, want := range map[string]float64{
		"{driver: pgx, dsn: x=y}":                             DefaultMaxBadRowsPercent,
		"{driver: pgx, dsn: x=y, max_bad_rows_percent: 0}":    0,
		"{driver: pgx, dsn: x=y, max_bad_rows_percent: 2.5}":  2.5,
		"{driver: pgx, dsn: x=y, max_bad_rows_percent: null}": DefaultMaxBadRowsPercent,
	} {
		cfg, err := Parse([]byte("environment: test\nsources:\n  sits: "+yaml+"\n"), envOf(nil))
		if err != nil {
			t.Fatalf("%s: %v", yaml, err)
		}
		if got := cfg.Sources.SITS.MaxBadRowsPercent; got != want {
			t.Errorf("%s: max_bad_rows_percent %g, want %g", yaml, got, want)
		}
	}
}

func TestSQLServerAndPowerCampusConfiguration(t *testing.T) {
	cfg, err := Parse([]byte("environment: test\nsources:\n  sits: {driver: sqlserver, dsn: \"server=pc;user id=u;password=p w;database=Campus6\", system: powercampus, schema: dbo, term: WINTER}\n"), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Sources.SITS; s.Driver != "sqlserver" || s.System != "powercampus" || s.Term != "WINTER" {
		t.Errorf("%+v", s)
	}
	if got := cfg.Sources.SITS.DSN.String(); strings.Contains(got, "p w") || !strings.Contains(got, "database=Campus6") {
		t.Errorf("printed DSN %q", got)
	}
	if cfg, err := Parse([]byte("environment: test\nsources:\n  sits: {driver: godror, dsn: x=y}\n"), envOf(nil)); err != nil || cfg.Sources.SITS.System != "sits" {
		t.Errorf("default system: %v", err)
	}
	for yaml, path := range map[string]string{
		"sits: {driver: mysql, dsn: x=y}":                    "sources.sits.driver",
		"sits: {driver: pgx, dsn: x=y, system: banner}":      "sources.sits.system",
		"sits: {driver: pgx, dsn: x=y, term: WINTER}":        "sources.sits.term",
		"cmis: {driver: pgx, dsn: x=y, system: powercampus}": "sources.cmis.system",
	} {
		_, err := Parse([]byte("environment: test\nsources:\n  "+yaml+"\n"), envOf(nil))
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v", yaml, err)
		}
	}
}
