package moodle_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/extract"
	moodlex "github.com/mimwarehouse/mim/extract/moodle"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/secret"
	"github.com/mimwarehouse/mim/load"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// BenchmarkDBRead reads the main site of the synthetic institution (scale
// medium; ucl with MIM_BENCH_FULL=1) from its database, on PostgreSQL and
// on MariaDB, and reports each read beside its reference: the same tables
// read whole by plain SELECTs, every column of every row fetched, which any
// read of them costs at least. Run it with
//
//	MIM_BENCH_FULL=1 go test -run '^$' -bench DBRead -benchtime 1x ./extract/moodle/
//
// "discard" drops the records (the read alone); "loader" lands them in a
// real PostgreSQL through the raw loader, first load then an unchanged
// re-read, as a night would.
func BenchmarkDBRead(b *testing.B) {
	st := benchSite(b)
	sim, err := moodletest.New(*st, moodletest.WithClock(func() time.Time { return dbNow }))
	if err != nil {
		b.Fatal(err)
	}
	for _, driver := range []string{"pgx", "mysql"} {
		b.Run(driver, func(b *testing.B) {
			ctx := context.Background()
			mdb := newMoodleDB(b, driver)
			start := time.Now()
			if err := sim.WriteTables(ctx, mdb.db, mdb.dialect, moodletest.TableOptions{}); err != nil {
				b.Fatal(err)
			}
			if driver == "pgx" {
				if _, err := mdb.db.ExecContext(ctx, "ANALYZE"); err != nil {
					b.Fatal(err)
				}
			}
			b.Logf("%s: the site's tables written in %s", driver, time.Since(start).Round(time.Millisecond))
			site := &moodlex.Site{Name: "main", URL: "https://moodle.example.ac.uk", Environment: "test",
				Entities: append([]string(nil), moodlex.DefaultEntityNames...),
				Database: &moodlex.Database{Driver: driver, DSN: mdb.dsn, Prefix: "mdl_", MaxLag: time.Hour}}
			ref, rows := plainRead(b, driver, mdb.dsn, site)
			b.Logf("reference: the %d rows of the tables read, by plain SELECTs: %s", rows, ref.Round(time.Millisecond))
			source := func() *moodlex.DBSource {
				src, err := moodlex.NewDB(site, extract.Options{}, moodlex.WithClock(func() time.Time { return dbNow }))
				if err != nil {
					b.Fatal(err)
				}
				return src
			}
			report := func(b *testing.B, name string, src *moodlex.DBSource, elapsed time.Duration, records int64) {
				b.ReportMetric(elapsed.Seconds(), "s")
				b.ReportMetric(ref.Seconds(), "ref_s")
				b.ReportMetric(elapsed.Seconds()/ref.Seconds(), "x_ref")
				b.ReportMetric(float64(src.Queries()), "queries")
				b.Logf("%s %s: %d records, %d queries in %s; plain SELECTs of the same tables %s: %.2f× the reference",
					driver, name, records, src.Queries(), elapsed.Round(time.Millisecond), ref.Round(time.Millisecond),
					elapsed.Seconds()/ref.Seconds())
			}
			b.Run("discard", func(b *testing.B) {
				for b.Loop() {
					sink := &discardSink{}
					src := source()
					peak := heapPeak()
					start := time.Now()
					if err := src.Extract(ctx, sink); err != nil {
						b.Fatal(err)
					}
					elapsed := time.Since(start)
					extra := peak()
					b.ReportMetric(float64(sink.records.Load()), "records")
					b.ReportMetric(float64(extra)/(1<<20), "MB_live_peak")
					report(b, "read", src, elapsed, sink.records.Load())
				}
			})
			b.Run("loader", func(b *testing.B) {
				wh := pgtest.New(b)
				for b.Loop() {
					for _, phase := range []string{"first load", "unchanged re-read"} {
						run, err := ledger.Begin(ctx, wh.Pool, "bench", "test", "bench", nil)
						if err != nil {
							b.Fatal(err)
						}
						src := source()
						start := time.Now()
						loader := load.New(wh.Pool, run)
						err = src.Extract(ctx, loader)
						elapsed := time.Since(start)
						_ = run.Finish(ctx, ledger.Succeeded, 0, nil)
						if err != nil {
							b.Fatal(err)
						}
						var records int64
						for _, r := range loader.Reports() {
							records += r.Result.In
						}
						report(b, phase, src, elapsed, records)
					}
				}
			})
		})
	}
}

// plainRead times reading every row and column of the tables a read of
// site uses, each by one SELECT, on one connection: the reference.
func plainRead(b *testing.B, driver string, dsn secret.DSN, site *moodlex.Site) (time.Duration, int64) {
	b.Helper()
	ctx := context.Background()
	db, err := moodlex.OpenDB(ctx, driver, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	tables, _ := moodlex.DBTables(site)
	var rows int64
	start := time.Now()
	for _, t := range tables {
		rs, err := db.QueryContext(ctx, "SELECT * FROM mdl_"+t)
		if err != nil {
			b.Fatal(err)
		}
		cols, _ := rs.Columns()
		vals := make([]sql.RawBytes, len(cols))
		dest := make([]any, len(cols))
		for i := range vals {
			dest[i] = &vals[i]
		}
		for rs.Next() {
			if err := rs.Scan(dest...); err != nil {
				b.Fatal(err)
			}
			rows++
		}
		if err := rs.Err(); err != nil {
			b.Fatal(err)
		}
		rs.Close()
	}
	return time.Since(start), rows
}
