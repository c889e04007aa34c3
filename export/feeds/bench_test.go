package feeds

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/export/deliver"
	"github.com/mimwarehouse/mim/export/feeds/feedstest"
	"github.com/mimwarehouse/mim/export/ims"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/synth"
)

// benchScale is the institution the IMS benchmarks use: small by default,
// MIM_BENCH_SCALE=ucl (or medium) for the full size.
func benchScale(b *testing.B) synth.Scale {
	s := os.Getenv("MIM_BENCH_SCALE")
	if s == "" {
		return synth.Small
	}
	sc, err := synth.ParseScale(s)
	if err != nil {
		b.Fatal(err)
	}
	return sc
}

// benchEnv is a warehouse whose IMS target is the institution's, every
// site's, from the Manifest's rules, in one site's name ("main").
func benchEnv(b *testing.B) (*pgtest.DB, *Config, int) {
	b.Helper()
	in, err := synth.Generate(synth.Options{Scale: benchScale(b)})
	if err != nil {
		b.Fatal(err)
	}
	var rows []feedstest.Membership
	for _, s := range in.Sites {
		for _, m := range feedstest.SynthTarget(in, s.Name) {
			m.Instance = "main"
			m.CourseIDNumber = s.Name + ":" + m.CourseIDNumber
			rows = append(rows, m)
		}
	}
	db := pgtest.New(b)
	feedstest.FillMemberships(b, db.Pool, rows)
	if _, err := db.Pool.Exec(context.Background(), `ANALYZE mart.exp_ims_membership`); err != nil {
		b.Fatal(err)
	}
	cfg := &Config{Environment: pgtest.Environment,
		Sites:    []Site{{Name: "main", Environment: pgtest.Environment, IMSTarget: "main", EnrolmentFeed: IMS}},
		Deliver:  deliver.Options{Dir: b.TempDir()},
		IMSRoles: map[string]string{"student": "01"}}
	return db, cfg, len(rows)
}

// BenchmarkIMSExport times a first (full) IMS export of the target three
// ways on the same cursor: the export query alone, its rows read and
// discarded; the query with the rows written to the file by ims.Writer
// (temporary name, fsync, rename); and that with the file re-parsed by
// ims.Validate before the rename, as the export does. MB/s is of the file.
//
//	MIM_REQUIRE_DB=1 MIM_BENCH_SCALE=ucl go test ./export/feeds -run '^$' -bench IMSExport -benchtime 3x
func BenchmarkIMSExport(b *testing.B) {
	db, cfg, n := benchEnv(b)
	ctx := context.Background()
	b.Logf("target: %d memberships", n)
	site := &cfg.Sites[0]
	var size int64
	files := 0
	plan := func(b *testing.B, tx pgx.Tx) *imsPlan {
		p, err := planIMS(ctx, tx, cfg, site, false)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	run := func(b *testing.B, body func(tx pgx.Tx, p *imsPlan)) {
		for b.Loop() {
			tx, err := db.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
			if err != nil {
				b.Fatal(err)
			}
			body(tx, plan(b, tx))
			_ = tx.Rollback(ctx)
		}
	}
	write := func(validate bool) func(tx pgx.Tx, p *imsPlan) {
		return func(tx pgx.Tx, p *imsPlan) {
			var opts []deliver.WriteOption
			if validate {
				opts = append(opts, deliver.Verify(func(r io.Reader) error { _, err := ims.Validate(r); return err }))
			}
			// A new name each time: a file replacing one written in the same
			// second waits for the next second (Moodle's mtime rule).
			files++
			path := filepath.Join(cfg.Deliver.Dir, fmt.Sprintf("bench-%d.xml", files))
			f, err := deliver.WriteFile(ctx, path, func(w io.Writer) error {
				iw := ims.NewWriter(w)
				if err := iw.WriteProperties(ims.Properties{Target: "main", DateTime: time.Now()}); err != nil {
					return err
				}
				if err := streamMembers(ctx, tx, iw, nil, &skipSet{}, nil); err != nil {
					return err
				}
				return iw.Close()
			}, opts...)
			if err != nil {
				b.Fatal(err)
			}
			size = f.Size
			b.StopTimer()
			_ = os.Remove(path)
			b.StartTimer()
		}
	}
	// The file's size first, so every sub-benchmark reports MB/s of it.
	b.Run("write", func(b *testing.B) { run(b, write(false)); b.SetBytes(size) })
	b.Logf("file: %d bytes, %d memberships", size, n)
	b.Run("query", func(b *testing.B) {
		b.SetBytes(size)
		run(b, func(tx pgx.Tx, _ *imsPlan) {
			rows, err := tx.Query(ctx, streamSQL, []string{})
			if err != nil {
				b.Fatal(err)
			}
			var course, usr, role, kind, cohort string
			var status int
			var tb, te *time.Time
			k := 0
			for rows.Next() {
				if err := rows.Scan(&course, &usr, &role, &kind, &status, &tb, &te, &cohort); err != nil {
					b.Fatal(err)
				}
				k++
			}
			if rows.Err() != nil || k != n {
				b.Fatalf("read %d rows of %d: %v", k, n, rows.Err())
			}
		})
	})
	b.Run("write+validate", func(b *testing.B) { b.SetBytes(size); run(b, write(true)) })
	// The whole first export: plan, write, validate, archive, record.
	b.Run("export", func(b *testing.B) {
		b.SetBytes(size)
		x := New(db.Pool, cfg)
		for b.Loop() {
			b.StopTimer()
			if _, err := db.Pool.Exec(ctx, `TRUNCATE ctl.published_membership`); err != nil {
				b.Fatal(err)
			}
			_ = os.Remove(filepath.Join(cfg.Deliver.Dir, IMSFileName("main")))
			run, err := ledger.Begin(ctx, db.Pool, "export", pgtest.Environment, "bench", nil)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			sum, err := x.Run(ctx, run, Options{Feeds: []Feed{IMS}, Full: true})
			b.StopTimer()
			if err == nil {
				err = sum.Err()
			}
			_ = run.Finish(ctx, ledger.Outcome(err), 0, err)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}
