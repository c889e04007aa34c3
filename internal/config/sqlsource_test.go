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
