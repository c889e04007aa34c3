// Package synthworld runs the synthetic institution through the real
// pipeline, for tests: a fresh warehouse with synth's SITS and CMIS written
// into it, one simulated Moodle per site, a configuration naming them all as
// an operator would, and the real extractors, loader and transform.
package synthworld

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/extract/cmis"
	moodlex "github.com/mimwarehouse/mim/extract/moodle"
	"github.com/mimwarehouse/mim/extract/sits"
	"github.com/mimwarehouse/mim/extract/sqlsource"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/martconfig"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/load"
	"github.com/mimwarehouse/mim/moodle"
	"github.com/mimwarehouse/mim/moodle/moodletest"
	"github.com/mimwarehouse/mim/transform"
)

// ScaleFromEnv is the scale a benchmark builds, read from the environment
// variable name (small, medium or ucl; small when unset, to keep
// `go test -bench` short on a shared machine).
func ScaleFromEnv(tb testing.TB, name string) synth.Scale {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return synth.Small
	}
	sc, err := synth.ParseScale(s)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return sc
}

// Token is every simulated site's web-service token.
const Token = "world0123456789abcdef0123456789ab"

// Options shape a World.
type Options struct {
	Synth synth.Options
	// Entities, if set, is what every site's extraction reads (default all).
	Entities []string
	// Config is YAML appended to the configuration (an exports: section).
	Config string
}

// World is the synthetic institution in a fresh warehouse.
type World struct {
	DB    *pgtest.DB
	In    *synth.Institution
	Cfg   *config.Config
	Sites map[string]*moodletest.Site
	// Timings are the steps New and Extract took, and those Timed adds.
	Timings []Step
}

// Step is one timed step.
type Step struct {
	Name string
	D    time.Duration
}

// Timed runs f and records how long it took as the step name.
func (w *World) Timed(name string, f func()) {
	t0 := time.Now()
	f()
	w.Timings = append(w.Timings, Step{name, time.Since(t0)})
}

// New generates the institution, writes SITS and CMIS into a new warehouse
// database (schemas sismgr and moodlemgr) and starts one simulated Moodle
// per site.
func New(tb testing.TB, o Options) *World {
	tb.Helper()
	ctx := context.Background()
	w := &World{DB: pgtest.New(tb), Sites: map[string]*moodletest.Site{}}
	var err error
	w.Timed("synth generate", func() { w.In, err = synth.Generate(o.Synth) })
	if err != nil {
		tb.Fatal(err)
	}
	w.Timed("synth write SITS and CMIS", func() { _, err = w.In.Write(ctx, w.DB.Pool, "", nil) })
	if err != nil {
		tb.Fatal(err)
	}
	entities := ""
	if len(o.Entities) > 0 {
		entities = ", entities: [" + strings.Join(o.Entities, ", ") + "]"
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
	// The sites' profile fields, declared (synth.ProfileFieldNames).
	fields := synth.ProfileFieldNames()
	for _, s := range w.In.Sites {
		sim := moodletest.NewServer(tb, *s.State, moodletest.WithToken(Token))
		w.Sites[s.Name] = sim
		urls["URL_"+s.Name] = sim.URL()
		fmt.Fprintf(&yaml, "  - {name: %s, url: \"${URL_%s}\", token: \"${TOKEN}\", environment: test, concurrency: 4, page_size: 500%s, known_profile_fields: [%s]}\n",
			s.Name, s.Name, entities, strings.Join(fields, ", "))
	}
	yaml.WriteString(o.Config)
	w.Cfg, err = config.Parse([]byte(yaml.String()), func(k string) (string, bool) {
		switch k {
		case "DSN":
			return w.DB.DSN.Reveal(), true
		case "TOKEN":
			return Token, true
		}
		u, ok := urls[k]
		return u, ok
	})
	if err != nil {
		tb.Fatal(err)
	}
	return w
}

// Extract reads SITS and CMIS (when sis) and every Moodle site into raw
// with the real extractors and loader, side by side under one ledger run,
// as `mim extract` does, and fails the test if any source fails.
func (w *World) Extract(tb testing.TB, sis bool) {
	tb.Helper()
	ctx := context.Background()
	run, err := ledger.Begin(ctx, w.DB.Pool, "extract", pgtest.Environment, "test", []string{"extract"})
	if err != nil {
		tb.Fatal(err)
	}
	loader := load.New(w.DB.Pool, run)
	var srcs []extract.Source
	if sis {
		// As wire.NewSITS and wire.NewCMIS build them (see martConfigHook).
		s, err := sits.New(sits.Options{Read: sqlRead(w.Cfg.Sources.SITS), MinYear: w.Cfg.Sources.SITS.MinYear,
			System: w.Cfg.Sources.SITS.System, Term: w.Cfg.Sources.SITS.Term}, extract.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		c, err := cmis.New(sqlRead(w.Cfg.Sources.CMIS), extract.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		srcs = append(srcs, s, c)
	}
	for i := range w.Cfg.Moodle {
		site := &w.Cfg.Moodle[i]
		client, err := moodle.New(site.Name, site.URL, site.Token.Reveal(), moodle.WithRate(0),
			moodle.WithConcurrency(site.Concurrency), moodle.WithRetries(1), moodle.WithBackoff(time.Millisecond, 10*time.Millisecond))
		if err != nil {
			tb.Fatal(err)
		}
		src, err := moodlex.New(client, moodleSite(site), extract.Options{}, moodlex.WithWarehouse(w.DB.Pool))
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
	w.Timings = append(w.Timings, Step{"extract every source (side by side)", time.Since(t0)})
	err = errors.Join(errs...)
	if ferr := run.Finish(ctx, ledger.Outcome(err), 0, err); ferr != nil {
		tb.Fatal(ferr)
	}
	if err != nil {
		tb.Fatalf("extracting: %v", err)
	}
}

// MapAndSet puts synth's course mappings in ctl.course_mapping (recorded as
// made by by) and sets min_mod_occ_year to the institution's year, as after
// a rollover (the Manifest's counts hold for any limit up to that year).
func (w *World) MapAndSet(tb testing.TB, by string) {
	tb.Helper()
	if _, err := synth.InsertMappings(context.Background(), w.DB.Pool, w.In.Mappings, by); err != nil {
		tb.Fatal(err)
	}
	w.Setting(tb, "min_mod_occ_year", fmt.Sprint(w.In.Year))
}

// Setting changes a setting as `mim settings set` does (checked, with
// history), by "test".
func (w *World) Setting(tb testing.TB, key, value string) {
	tb.Helper()
	if _, err := settings.Set(context.Background(), w.DB.Pool, key, value, "test", "test", nil); err != nil {
		tb.Fatal(err)
	}
}

// Transform runs p (the embedded models when nil) in one transaction, with
// the hook that copies the configuration for the marts, as `mim transform`
// does.
func (w *World) Transform(tb testing.TB, p *transform.Project) (*transform.Result, error) {
	tb.Helper()
	if p == nil {
		var err error
		if p, err = transform.LoadEmbedded(); err != nil {
			tb.Fatal(err)
		}
	}
	// Under a ledger run, as `mim transform` does: the feeds know from its
	// steps which extract a mart was built from.
	ctx := context.Background()
	run, err := ledger.Begin(ctx, w.DB.Pool, "transform", pgtest.Environment, "test", []string{"transform"})
	if err != nil {
		tb.Fatal(err)
	}
	res, err := transform.Run(ctx, w.DB.Pool, p, transform.Options{
		Run: run, StatementTimeout: 30 * time.Minute, LockTimeout: time.Minute,
		Hooks: []transform.Hook{martConfigHook(w.Cfg)},
	})
	if ferr := run.Finish(ctx, ledger.Outcome(err), 0, err); ferr != nil {
		tb.Fatal(ferr)
	}
	return res, err
}

// martConfigHook is wire.MartConfigHook, which this package cannot call:
// the tests of the packages wire wires (export/feeds) build their worlds here.
func martConfigHook(cfg *config.Config) transform.Hook {
	o := martconfig.Options{IMSRoles: cfg.Exports.IMSRoles, MergeKeep: cfg.Exports.Merge.Keep}
	if len(o.MergeKeep) == 0 {
		o.MergeKeep = config.DefaultMergeKeep
	}
	for _, s := range cfg.Moodle {
		o.Sites = append(o.Sites, martconfig.Site{Name: s.Name, GroupPrefix: s.GroupPrefix, MainAuth: s.MainAuth})
	}
	return transform.Hook{Name: martconfig.HookName, After: "staging",
		Run: func(ctx context.Context, tx pgx.Tx) (string, error) { return martconfig.Write(ctx, tx, o) }}
}

// sqlRead is wire.SQLRead.
func sqlRead(s *config.SQLSource) sqlsource.Config {
	return sqlsource.Config{Driver: s.Driver, DSN: s.DSN, Schema: s.Schema,
		MaxBadRowsPercent: s.MaxBadRowsPercent, FetchSize: s.FetchSize, Timeout: s.Timeout}
}

// moodleSite is wire.MoodleSite for a site read through its web services.
func moodleSite(s *config.MoodleSite) *moodlex.Site {
	out := &moodlex.Site{Name: s.Name, URL: s.URL, Environment: s.Environment, Entities: s.Entities,
		PageSize: s.PageSize, Concurrency: s.Concurrency,
		Grades:     moodlex.Optional{Enabled: s.Grades.Enabled, Categories: s.Grades.Categories},
		Completion: moodlex.Optional{Enabled: s.Completion.Enabled, Categories: s.Completion.Categories}}
	for _, c := range s.UserCriteria {
		out.UserCriteria = append(out.UserCriteria, moodlex.Criterion{Key: c.Key, Value: c.Value})
	}
	return out
}

// Campus is a small synthetic university as the run and command tests
// use it: written into a fresh migrated warehouse labelled with their
// environment, its course mappings inserted, and each of its Moodle sites
// running as a simulator (token "tok-<site>-0123456789").
type Campus struct {
	DB *pgtest.DB
	In *synth.Institution
	// Sims are the running simulators by site name; In.Sites gives their order.
	Sims map[string]*moodletest.Site
}

// NewCampus builds a Campus labelled env; prepare, if given, may change
// the institution before it is written and its sites start.
func NewCampus(tb testing.TB, env string, prepare ...func(*synth.Institution)) *Campus {
	tb.Helper()
	ctx := context.Background()
	db := pgtest.NewEmpty(tb)
	if _, err := warehouse.Migrate(ctx, db.Pool, nil); err != nil {
		tb.Fatal(err)
	}
	if _, _, err := warehouse.EnsureDeployment(ctx, db.Pool, env, "test"); err != nil {
		tb.Fatal(err)
	}
	in, err := synth.Generate(synth.Options{Scale: synth.Small})
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range prepare {
		f(in)
	}
	if _, err := in.Write(ctx, db.Pool, "", nil); err != nil {
		tb.Fatal(err)
	}
	if _, err := synth.InsertMappings(ctx, db.Pool, in.Mappings, "test"); err != nil {
		tb.Fatal(err)
	}
	c := &Campus{DB: db, In: in, Sims: map[string]*moodletest.Site{}}
	for _, s := range in.Sites {
		site, err := moodletest.New(*s.State, moodletest.WithToken("tok-"+s.Name+"-0123456789"))
		if err != nil {
			tb.Fatal(err)
		}
		if err := site.Start(); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { site.Close() })
		c.Sims[s.Name] = site
	}
	return c
}
