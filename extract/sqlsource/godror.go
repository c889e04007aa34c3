//go:build cgo

package sqlsource

import (
	"fmt"

	"github.com/godror/godror"
)

// Oracle through godror (ODPI-C, cgo). At run time it needs Oracle Instant
// Client; without it the first connection fails with godror's DPI-1047.
func init() {
	drivers["godror"] = driver{
		sqlName: "godror",
		// Positional binds: each occurrence of a parameter is its own bind,
		// exactly as with pgx, so one argument list serves both.
		bind: func(n int, _ string) string { return fmt.Sprintf(":%d", n) },
		arg:  func(_ string, v any) any { return v },
		queryOptions: func(fetchSize int) []any {
			// Numbers as decimal strings: no float64 round trip, so a NUMBER
			// reads the same as a PostgreSQL numeric.
			opts := []any{godror.NumberAsString()}
			if fetchSize > 0 {
				opts = append(opts, godror.FetchArraySize(fetchSize), godror.PrefetchCount(fetchSize+1))
			}
			return opts
		},
	}
}
