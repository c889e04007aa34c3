package sits_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/extract/sqlsource"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/load"
)

// BenchmarkSyntheticInstitution times, on one institution: generating it,
// writing it into PostgreSQL, and extracting SITS and CMIS through the raw
// loader twice (a first night, then a night with nothing changed). The
// scale is small unless MIM_BENCH_SCALE says medium or ucl:
//
//	MIM_BENCH_SCALE=ucl MIM_REQUIRE_DB=1 go test ./extract/sits -run '^$' -bench SyntheticInstitution -benchtime 1x
func BenchmarkSyntheticInstitution(b *testing.B) {
	scale := synth.Small
	if s := os.Getenv("MIM_BENCH_SCALE"); s != "" {
		var err error
		if scale, err = synth.ParseScale(s); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		db := pgtest.New(b)
		start := time.Now()
		in, err := synth.Generate(synth.Options{Scale: scale})
		if err != nil {
			b.Fatal(err)
		}
		generated := time.Since(start)
		start = time.Now()
		counts, err := in.Write(ctx, db.Pool, "", nil)
		if err != nil {
			b.Fatal(err)
		}
		written := time.Since(start)
		var rows int64
		for _, c := range counts {
			rows += c.Rows
		}
		sources := []*config.SQLSource{
			{Driver: "pgx", DSN: db.DSN, Schema: "SISMGR", MaxBadRowsPercent: 1, FetchSize: 5000},
			{Driver: "pgx", DSN: db.DSN, Schema: "MOODLEMGR", MaxBadRowsPercent: 1, FetchSize: 5000},
		}
		night := func() (time.Duration, int64) {
			run, err := ledger.Begin(ctx, db.Pool, "extract", "bench", "bench", nil)
			if err != nil {
				b.Fatal(err)
			}
			loader := load.New(db.Pool, run)
			start := time.Now()
			for j, open := range []func(*config.SQLSource, extract.Options) (*sqlsource.Source, error){wire.NewSITS, wire.NewCMIS} {
				src, err := open(sources[j], extract.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if err := src.Extract(ctx, loader); err != nil {
					b.Fatal(err)
				}
			}
			d := time.Since(start)
			_ = run.Finish(ctx, ledger.Succeeded, 0, nil)
			var changed int64
			for _, r := range loader.Reports() {
				changed += r.Result.New + r.Result.Changed
			}
			return d, changed
		}
		// The sources alone, into a sink that only counts: what reading and
		// typing costs, without the loader.
		start = time.Now()
		var discard countSink
		for j, open := range []func(*config.SQLSource, extract.Options) (*sqlsource.Source, error){wire.NewSITS, wire.NewCMIS} {
			src, err := open(sources[j], extract.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if err := src.Extract(ctx, &discard); err != nil {
				b.Fatal(err)
			}
		}
		sourceOnly := time.Since(start)
		if discard.n != rows {
			b.Fatalf("read %d rows, wrote %d", discard.n, rows)
		}
		first, firstChanged := night()
		second, secondChanged := night()
		b.ReportMetric(generated.Seconds(), "generate-s")
		b.ReportMetric(written.Seconds(), "write-s")
		b.ReportMetric(float64(rows)/written.Seconds(), "write-rows/s")
		b.ReportMetric(float64(rows)/sourceOnly.Seconds(), "source-rows/s")
		b.ReportMetric(first.Seconds(), "extract1-s")
		b.ReportMetric(float64(rows)/first.Seconds(), "extract1-rows/s")
		b.ReportMetric(second.Seconds(), "extract2-s")
		b.ReportMetric(float64(secondChanged), "extract2-changed")
		b.Logf("scale %s: %d rows; generate %s, write %s, sources alone %s, first extraction %s (%d new), unchanged re-run %s (%d changed)",
			scale, rows, generated.Round(time.Millisecond), written.Round(time.Millisecond), sourceOnly.Round(time.Millisecond),
			first.Round(time.Millisecond), firstChanged,
			second.Round(time.Millisecond), secondChanged)
	}
}

// countSink counts records and keeps nothing.
type countSink struct{ n int64 }

func (c *countSink) Entity(context.Context, extract.EntityID) (extract.EntityWriter, error) {
	return &countWriter{c}, nil
}

type countWriter struct{ c *countSink }

func (w *countWriter) Write(context.Context, extract.Record) error { w.c.n++; return nil }
func (w *countWriter) ScopeComplete(string)                        {}
func (w *countWriter) ScopeFailed(string, error)                   {}
func (w *countWriter) RowError(string, error)                      {}
func (w *countWriter) Commit(context.Context) (extract.Result, error) {
	return extract.Result{}, nil
}
func (w *countWriter) Abort() {}
