//go:build cgo

package sqlsource_test

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/extract/sqlsource"
	"github.com/mimwarehouse/mim/extract/sqlsource/sqlsourcetest"
	"github.com/mimwarehouse/mim/internal/secret"
)

// Oracle cannot be reached here (no Instant Client, no database), but the
// driver must be built in, chosen by configuration, and fail as itself
// without showing the password.
func TestGodrorIsBuiltInAndSelectedByConfig(t *testing.T) {
	if !slices.Contains(sql.Drivers(), "godror") || !slices.Contains(sqlsource.Drivers(), "godror") {
		t.Fatalf("godror is not registered: database/sql has %v, sqlsource %v", sql.Drivers(), sqlsource.Drivers())
	}
	dsn := secret.DSN("mim_reader/Orac1eS3cret@sits-db.invalid:1521/SIS")
	_, err := sqlsource.Open(context.Background(), "godror", dsn)
	if err == nil {
		t.Fatal("connecting to Oracle succeeded; expected the driver to fail here")
	}
	msg := err.Error()
	if strings.Contains(msg, "Orac1eS3cret") {
		t.Errorf("the password leaked: %s", msg)
	}
	// DPI-1047: no Oracle client library; ORA-/DPI- codes come from godror's ODPI-C.
	if !strings.Contains(msg, "with driver godror") || !(strings.Contains(msg, "DPI-") || strings.Contains(msg, "ORA-")) {
		t.Errorf("not godror's error: %s", msg)
	}

	var sink sqlsourcetest.Sink
	src, err := sqlsource.New(sqlsource.Config{Source: "sits", Driver: "godror", DSN: dsn, Schema: "SISMGR"},
		[]sqlsource.Entity{{Name: "x", SQL: "SELECT A FROM {{schema}}V", Key: []string{"a"}}}, extract.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = src.Extract(context.Background(), &sink)
	if err == nil || strings.Contains(err.Error(), "Orac1eS3cret") || !strings.Contains(err.Error(), "DPI-") {
		t.Errorf("extract through godror: %v", err)
	}
	t.Logf("godror says: %s", msg)
}
