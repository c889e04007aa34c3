package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/extract/cmis"
	moodlex "github.com/mimwarehouse/mim/extract/moodle"
	"github.com/mimwarehouse/mim/extract/sits"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/martconfig"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/load"
	"github.com/mimwarehouse/mim/moodle"
	"github.com/mimwarehouse/mim/moodle/moodletest"
	"github.com/mimwarehouse/mim/transform"
)

// world is the synthetic institution in a fresh warehouse: its SITS and
// CMIS tables written, its Moodle sites running in the simulator, and a
// configuration that names them all as an operator would.
type world struct {
	db    *pgtest.DB
	in    *synth.Institution
	cfg   *config.Config
	sites map[string]*moodletest.Site
	// timings of the steps newWorld and extract took, for the benchmark.
	timings []step
}

type step struct {
	name string
	d    time.Duration
}

func (w *world) timed(name string, f func()) {
	t0 := time.Now()
	f()
	w.timings = append(w.timings, step{name, time.Since(t0)})
}

const token = "e2e0123456789abcdef0123456789abcd"

// newWorld generates the institution, writes SITS and CMIS into the
// warehouse database (schemas sismgr and moodlemgr) and starts one
// simulated Moodle per site.
func newWorld(tb testing.TB, opts synth.Options) *world {
	tb.Helper()
	ctx := context.Background()
	w := &world{db: pgtest.New(tb), sites: map[string]*moodletest.Site{}}
	var err error
	w.timed("synth generate", func() { w.in, err = synth.Generate(opts) })
	if err != nil {
		tb.Fatal(err)
	}
	w.timed("synth write SITS and CMIS", func() { _, err = w.in.Write(ctx, w.db.Pool, "", nil) })
	if err != nil {
		tb.Fatal(err)
	}
	var yaml strings.Builder
	yaml.WriteString(`environment: test
warehouse: {dsn: "${DSN}"}
sources:
  sits: {driver: pgx, dsn: "${DSN}", schema: SISMGR}
  cmis: {driver: pgx, dsn: "${DSN}", schema: MOODLEMGR}
moodle:
`)
	urls := map[string]string{}
	for _, s := range w.in.Sites {
		sim := moodletest.NewServer(tb, *s.State, moodletest.WithToken(token))
		w.sites[s.Name] = sim
		urls["URL_"+s.Name] = sim.URL()
		fmt.Fprintf(&yaml, "  - {name: %s, url: \"${URL_%s}\", token: \"${TOKEN}\", environment: test, concurrency: 4, page_size: 500}\n", s.Name, s.Name)
	}
	w.cfg, err = config.Parse([]byte(yaml.String()), func(k string) (string, bool) {
		switch {
		case k == "DSN":
			return w.db.DSN.Reveal(), true
		case k == "TOKEN":
			return token, true
		}
		u, ok := urls[k]
		return u, ok
	})
	if err != nil {
		tb.Fatal(err)
	}
	return w
}

// extract reads SITS, CMIS and every Moodle site into raw with the real
// extractors and loader, side by side under one ledger run, as `mim extract`
// does, and fails the test if any source fails.
func (w *world) extract(tb testing.TB) {
	tb.Helper()
	ctx := context.Background()
	run, err := ledger.Begin(ctx, w.db.Pool, "extract", "test", "e2e", []string{"extract"})
	if err != nil {
		tb.Fatal(err)
	}
	loader := load.New(w.db.Pool, run)
	var srcs []extract.Source
	s, err := sits.New(w.cfg.Sources.SITS, extract.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := cmis.New(w.cfg.Sources.CMIS, extract.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	srcs = append(srcs, s, c)
	for i := range w.cfg.Moodle {
		site := &w.cfg.Moodle[i]
		client, err := moodle.New(site.Name, site.URL, site.Token.Reveal(), moodle.WithRate(0),
			moodle.WithConcurrency(site.Concurrency), moodle.WithRetries(1), moodle.WithBackoff(time.Millisecond, 10*time.Millisecond))
		if err != nil {
			tb.Fatal(err)
		}
		src, err := moodlex.New(client, site, extract.Options{}, moodlex.WithWarehouse(w.db.Pool))
		if err != nil {
			tb.Fatal(err)
		}
		srcs = append(srcs, src)
	}
	errs := make([]error, len(srcs))
	t0 := time.Now()
	var wg sync.WaitGroup
	for i, src := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = src.Extract(ctx, loader)
		}()
	}
	wg.Wait()
	w.timings = append(w.timings, step{"extract SITS, CMIS and every site (side by side)", time.Since(t0)})
	err = errors.Join(errs...)
	if ferr := run.Finish(ctx, ledger.Outcome(err), 0, err); ferr != nil {
		tb.Fatal(ferr)
	}
	if err != nil {
		tb.Fatalf("extracting: %v", err)
	}
}

// mapAndSet puts synth's course mappings in ctl.course_mapping and sets
// min_mod_occ_year to the current year, as after a rollover (the Manifest's
// counts hold for any limit up to the current year).
func (w *world) mapAndSet(tb testing.TB) {
	tb.Helper()
	ctx := context.Background()
	if _, err := synth.InsertMappings(ctx, w.db.Pool, w.in.Mappings, "e2e"); err != nil {
		tb.Fatal(err)
	}
	w.setting(tb, "min_mod_occ_year", fmt.Sprint(w.in.Year))
}

func (w *world) setting(tb testing.TB, key, value string) {
	tb.Helper()
	if _, err := w.db.Pool.Exec(context.Background(), `UPDATE ctl.settings SET value = $2 WHERE key = $1`, key, value); err != nil {
		tb.Fatal(err)
	}
}

// project loads the embedded models (projectWith adds files to them).
func project(tb testing.TB) *transform.Project {
	tb.Helper()
	p, err := transform.LoadEmbedded()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// transform runs every model in one transaction, with the hook that copies
// the configuration for the marts, as `mim transform` does.
func (w *world) transform(tb testing.TB, p *transform.Project) (*transform.Result, error) {
	tb.Helper()
	return transform.Run(context.Background(), w.db.Pool, p, transform.Options{
		StatementTimeout: 30 * time.Minute, LockTimeout: time.Minute,
		Hooks: []transform.Hook{martconfig.Hook(w.cfg)},
	})
}

// count runs a query returning one number.
func count(tb testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	tb.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return int(n)
}

// rows runs a query and returns every row as text ("NULL" for NULL).
func rows(tb testing.TB, pool *pgxpool.Pool, sql string, args ...any) [][]string {
	tb.Helper()
	rs, err := pool.Query(context.Background(), sql, args...)
	if err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) ([]string, error) {
		vals, err := r.Values()
		row := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				row[i] = "NULL"
			} else {
				row[i] = fmt.Sprint(v)
			}
		}
		return row, err
	})
	if err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return out
}
