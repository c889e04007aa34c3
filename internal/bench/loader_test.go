package bench_test

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/mimwarehouse/mim/internal/bench"
	"github.com/mimwarehouse/mim/internal/pgtest"
)

// BenchmarkLoad runs bench.MeasureLoad once: a first load, an unchanged re-run and
// a 10% changed re-run against psql \copy of the same rows. 100,000 records
// by default; MIM_BENCH_RECORDS=1000000 for the full-size run,
// MIM_BENCH_WRITERS for concurrent writers (default 1).
//
//	MIM_REQUIRE_DB=1 go test ./internal/bench -run '^$' -bench Load -benchtime 1x
func BenchmarkLoad(b *testing.B) {
	n := envInt(b, "MIM_BENCH_RECORDS", 100_000)
	writers := envInt(b, "MIM_BENCH_WRITERS", 1)
	db := pgtest.New(b)
	for b.Loop() {
		res, err := bench.MeasureLoad(context.Background(), db.Pool, db.DSN.Reveal(), bench.LoadConfig{Records: n, Writers: writers, Log: os.Stderr})
		if err != nil {
			b.Fatal(err)
		}
		res.Report(os.Stderr)
		for _, p := range res.Phases {
			b.ReportMetric(p.Ratio, "x-copy-"+map[string]string{"first load": "first", "unchanged re-run": "unchanged", "10% changed": "changed10"}[p.Name])
		}
	}
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q is not a positive whole number", name, s)
	}
	return n
}
