package bench

import (
	"testing"

	"github.com/mimwarehouse/mim/load"
)

// BenchmarkCanonical times the loader's canonical JSON of one
// enrolment-shaped payload (the load stage's records).
func BenchmarkCanonical(b *testing.B) {
	payload := benchPayload(12345, 678, 0)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		var err error
		if buf, err = load.Canonical(buf[:0], payload); err != nil {
			b.Fatal(err)
		}
	}
}
