package night_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/cli"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/night"
	"github.com/mimwarehouse/mim/internal/observe"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/pipeline"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/synth/synthworld"
	"github.com/mimwarehouse/mim/load"
	"github.com/mimwarehouse/mim/moodle"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// testEnvironment is the deployment the worlds below are labelled with.
const testEnvironment = "demo"

// world is a synthetic university in a migrated warehouse labelled env,
// with its Moodle sites running as simulators.
type world struct {
	db    *pgtest.DB
	in    *synth.Institution
	sites []synth.WorldSite
	sims  map[string]*moodletest.Site
}

// newWorld builds the world; prepare, if given, may change the synthetic
// institution before it is written and its sites start.
func newWorld(t *testing.T, env string, prepare ...func(*synth.Institution)) *world {
	t.Helper()
	c := synthworld.NewCampus(t, env, prepare...)
	w := &world{db: c.DB, in: c.In, sims: c.Sims}
	for i, s := range c.In.Sites {
		site := c.Sims[s.Name]
		w.sites = append(w.sites, synth.WorldSite{Name: s.Name, URL: site.URL(), Token: site.Token(), OneRoster: i == 0})
	}
	return w
}

// runEnv is a night.Env over the world, and where its runs write.
type runEnv struct {
	*night.Env
	out      *syncBuffer
	requests *observe.Tally
}

// env is the night's environment with sites as configured, built the way
// internal/app builds it (each site's client within its own limits).
func (w *world) env(t *testing.T, sites []synth.WorldSite) *runEnv {
	t.Helper()
	cfg, err := synth.Config(synth.ConfigOptions{Environment: testEnvironment, DSN: w.db.DSN.Reveal(), Out: t.TempDir(),
		MinYear: w.in.Year, Sites: sites, VarPrefix: "MIM_TEST"})
	if err != nil {
		t.Fatal(err)
	}
	r := &runEnv{out: &syncBuffer{}, requests: observe.NewTally()}
	r.Env = &night.Env{Config: cfg, Logger: slog.New(slog.DiscardHandler), Stderr: io.Discard, Operator: "test", Version: "test",
		Warehouse: func(context.Context) (*pgxpool.Pool, error) { return w.db.Pool, nil },
		MoodleClient: func(site *config.MoodleSite, opts ...moodle.Option) (*moodle.Client, error) {
			base := []moodle.Option{moodle.WithRate(site.RatePerSecond), moodle.WithConcurrency(site.Concurrency),
				moodle.WithMaxInputVars(site.MaxInputVars), moodle.WithTimeout(site.Timeout), moodle.WithRetries(site.Retries),
				moodle.WithObserver(r.requests)}
			return moodle.New(site.Name, site.URL, site.Token.Reveal(), append(base, opts...)...)
		},
	}
	return r
}

// run runs one night (or cycle) with o, writing to the env's output; it
// fails the test when the run did not start.
func (r *runEnv) run(t *testing.T, o night.Options) (*pipeline.Result, error) {
	t.Helper()
	o.Out = r.out
	if o.Progress == "" {
		o.Progress = "off"
	}
	res, err := night.Run(context.Background(), r.Env, o)
	if res == nil {
		t.Fatalf("the run did not start: %v\n%s", err, r.out.String())
	}
	return res, err
}

// steps are the ledger's steps of run runID that match keep.
func (w *world) steps(t *testing.T, runID int64, keep func(ledger.StepSummary) bool) []ledger.StepSummary {
	t.Helper()
	all, err := ledger.Steps(context.Background(), w.db.Pool, runID)
	if err != nil {
		t.Fatal(err)
	}
	var out []ledger.StepSummary
	for _, s := range all {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// runs are the runs the ledger holds, newest first.
func (w *world) runs(t *testing.T) []ledger.RunSummary {
	t.Helper()
	runs, err := ledger.Recent(context.Background(), w.db.Pool, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

// live says whether raw holds key of entity id as a live record.
func (w *world) live(t *testing.T, id extract.EntityID, key string) bool {
	t.Helper()
	ok, err := load.IsLive(context.Background(), w.db.Pool, id, key)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// exitCode is the exit code err carries, as the mim command reports it.
var exitCode = cli.ExitCode

// syncBuffer is a bytes.Buffer safe to write from one goroutine while
// another reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
