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
