//go:build !cgo

package sqlsource

// Without cgo the Oracle driver cannot be compiled in; say so plainly when a
// configuration asks for it.
func init() {
	drivers["godror"] = driver{
		unavailable: "Oracle support (driver godror) is not built into this binary: " +
			"it needs cgo; rebuild with CGO_ENABLED=1 and a C compiler (and install Oracle Instant Client to run it)",
	}
}
