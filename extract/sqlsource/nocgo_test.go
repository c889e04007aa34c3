//go:build !cgo

package sqlsource_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/extract/sqlsource"
	"github.com/mimwarehouse/mim/internal/secret"
)

func TestWithoutCgoOracleIsRefusedClearly(t *testing.T) {
	_, err := sqlsource.Open(context.Background(), "godror", secret.DSN("u/Secret1@db:1521/SIS"))
	if err == nil || !strings.Contains(err.Error(), "Oracle support (driver godror) is not built into this binary") ||
		strings.Contains(err.Error(), "Secret1") {
		t.Errorf("got %v", err)
	}
}
