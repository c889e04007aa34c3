// Package bench measures MIM's whole pipeline at a chosen scale in one run,
// each figure beside a physical reference measured in the same run: the raw
// loader against psql's \copy of the same rows, Moodle extraction against
// concurrency ÷ latency, the IMS export against its query alone, and whole
// `mim run` nights against simulated sites. It is `mim bench`; it works in a
// scratch database of its own and runs the mim commands it times as child
// processes, so their peak memory is their own.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// The stages `mim bench` can run, in the order it runs them.
const (
	StageLoad      = "load"      // raw loader vs psql \copy: first load, unchanged, 10% changed
	StageExtract   = "extract"   // one Moodle site alone: requests/s vs concurrency ÷ latency
	StageRun       = "run"       // `mim run`: the first night and an unchanged second night
	StageTransform = "transform" // `mim transform` on the first night's raw: layers and models
	StageIMS       = "ims"       // the IMS export vs its query alone, MB/s
	StageIntraday  = "intraday"  // `mim run --cycle intraday` after the nights
	StageAirflow   = "airflow"   // the Airflow ELT seed's request pattern on the same site
)

// Stages lists every stage in the order they run.
var Stages = []string{StageLoad, StageExtract, StageRun, StageTransform, StageIMS, StageIntraday, StageAirflow}

// The ways a night reads the Moodle sites (Options.Kinds).
const (
	KindWS = "ws" // their web services (kind moodle)
	KindDB = "db" // their databases (kind moodle-db), copies of the sites' tables in the scratch database
)

// Kinds lists the ways of reading Moodle, in the order they are measured.
var Kinds = []string{KindWS, KindDB}

// ProfileDirEnv is the variable that has a mim command profile itself
// (internal/app.ProfileDirEnv).
const ProfileDirEnv = "MIM_PROFILE_DIR"

// DefaultDatabase is the scratch database the bench creates (and drops).
const DefaultDatabase = "mim_bench"

// DefaultServer is the server the bench connects to when neither
// Options.Server nor MIM_BENCH_DATABASE_URL names one: the local
// PostgreSQL that ./scripts/setup prepares (role mim may CREATE DATABASE).
const DefaultServer = "postgres://mim:mim@127.0.0.1:5432/postgres?sslmode=disable"

// Environment labels the bench's warehouse and its simulated sites.
const Environment = "bench"

// Options choose what a bench measures.
type Options struct {
	Scale synth.Scale
	Seed  uint64
	// Year is the synthetic university's academic start year (0: 2025).
	Year int
	// Latency is how long each simulated site takes to answer a call
	// (default 20ms; negative: none).
	Latency time.Duration
	// Sites limits the simulated sites to the first N of the scale (0: all).
	Sites int
	// Concurrency is each site's requests in flight (default 8).
	Concurrency int
	// Only limits the stages (default every one of Stages).
	Only []string
	// Kinds are the ways the nights read the Moodle sites, each measured on
	// a fresh world (default both of Kinds, web services first): the
	// extract and run stages run once per kind, transform and ims on the
	// first kind's marts, intraday after the last kind's nights.
	Kinds []string
	// Server is a connection string to the PostgreSQL server the bench uses
	// (default $MIM_BENCH_DATABASE_URL, else DefaultServer); its role must
	// be allowed to create databases. The bench creates Database there.
	Server string
	// Database is the scratch database's name (default DefaultDatabase). A
	// database of that name is dropped first, unless it is another
	// environment's warehouse, which is refused.
	Database string
	// Keep leaves the scratch database (and the files) in place afterwards.
	Keep bool
	// Psql is the psql binary of the load stage (default "psql" on PATH).
	Psql string
	// LoadRecords is the load stage's records per phase (default by scale:
	// small 100,000, medium 300,000, ucl 1,000,000).
	LoadRecords int
	// AirflowSample is how long the Airflow pattern really runs before its
	// total is estimated (default 30s; it takes hours in full).
	AirflowSample time.Duration
	// Dir holds the configuration, the feeds and the load stage's COPY file
	// (default a new temporary directory, removed afterwards).
	Dir string
	// Log receives progress lines as the stages run (default nowhere).
	Log io.Writer
	// ProfileDir, if set, has every mim command the bench runs write Go
	// CPU and peak-heap profiles of itself there (ProfileDirEnv).
	ProfileDir string
	// Command runs `mim ARGS...` in a child process; default this very
	// executable (os.Executable), which must be the mim binary.
	Command func(ctx context.Context, args ...string) *exec.Cmd
}

func (o *Options) defaults() error {
	if o.Scale == "" {
		o.Scale = synth.Small
	}
	if _, err := synth.ParseScale(string(o.Scale)); err != nil {
		return err
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	switch {
	case o.Latency == 0:
		o.Latency = 20 * time.Millisecond
	case o.Latency < 0:
		o.Latency = 0
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if len(o.Only) == 0 {
		o.Only = Stages
	}
	for _, s := range o.Only {
		if !slices.Contains(Stages, s) {
			return fmt.Errorf("%q is not a stage (stages: %s)", s, strings.Join(Stages, ", "))
		}
	}
	if len(o.Kinds) == 0 {
		o.Kinds = Kinds
	}
	for _, k := range o.Kinds {
		if !slices.Contains(Kinds, k) {
			return fmt.Errorf("%q is not a way of reading Moodle (%s)", k, strings.Join(Kinds, ", "))
		}
	}
	if o.Server == "" {
		o.Server = os.Getenv("MIM_BENCH_DATABASE_URL")
	}
	if o.Server == "" {
		o.Server = DefaultServer
	}
	if o.Database == "" {
		o.Database = DefaultDatabase
	}
	if o.Psql == "" {
		o.Psql = "psql"
	}
	if o.LoadRecords <= 0 {
		o.LoadRecords = map[synth.Scale]int{synth.Small: 100_000, synth.Medium: 300_000, synth.UCL: 1_000_000}[o.Scale]
	}
	if o.AirflowSample == 0 {
		o.AirflowSample = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Command == nil {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the mim executable to run: %w", err)
		}
		o.Command = func(ctx context.Context, args ...string) *exec.Cmd { return exec.CommandContext(ctx, exe, args...) }
	}
	return nil
}

func (o *Options) want(stage string) bool { return slices.Contains(o.Only, stage) }

// bench is one run of the bench: its database, sites and figures.
type bench struct {
	o       Options
	rep     *Report
	db      *scratch
	pool    *pgxpool.Pool
	in      *synth.Institution
	sites   []*simSite
	dir     string
	configs map[string]string // the children's configuration file by kind of Moodle read
	kind    string            // the kind of Moodle read of the world being measured
	env     []string          // the children's environment (DSN and tokens)
	start   time.Time
	nights  map[string][2]time.Duration // each kind's nights' wall times, once measured
	reads   map[string]*siteReads       // what reading each site cost, by site
	rss     int64                       // the largest peak RSS of a mim run
}

// simSite is one simulated Moodle site and the times of its requests.
type simSite struct {
	name  string
	site  *moodletest.Site
	token string
	log   *requestLog
}

// Run runs the bench and returns its report; the report so far comes back
// with an error too. Progress goes to o.Log.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	b := &bench{o: o, start: time.Now()}
	b.rep = &Report{Scale: o.Scale, Latency: o.Latency, Concurrency: o.Concurrency, Stages: o.Only}
	if o.want(StageLoad) {
		p, err := exec.LookPath(o.Psql)
		if err != nil {
			return nil, fmt.Errorf("the load stage compares the loader with psql's \\copy, and %q was not found (%v): install PostgreSQL's client (./scripts/setup does: apt-get install postgresql-client), pass --psql PATH, or leave the stage out with --only", o.Psql, err)
		}
		b.o.Psql = p
	}
	defer b.close()
	err := b.run(ctx)
	b.rep.Elapsed = time.Since(b.start)
	b.rep.PeakRSS = selfPeakRSS()
	return b.rep, err
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.o.Log, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (b *bench) run(ctx context.Context) error {
	o := &b.o
	var err error
	if b.dir = o.Dir; b.dir == "" {
		if b.dir, err = os.MkdirTemp("", "mim-bench-*"); err != nil {
			return fmt.Errorf("creating the bench's directory: %w", err)
		}
	} else if err := os.MkdirAll(b.dir, 0o750); err != nil {
		return fmt.Errorf("creating the bench's directory: %w", err)
	}
	b.nights, b.reads = map[string][2]time.Duration{}, map[string]*siteReads{}
	b.kind = o.Kinds[0]
	if err := b.setup(ctx); err != nil {
		return err
	}
	if o.want(StageLoad) {
		if err := b.load(ctx); err != nil {
			return err
		}
	}
	if o.want(StageExtract) {
		if err := b.extractKinds(ctx); err != nil {
			return err
		}
	}
	for i, kind := range o.Kinds {
		if i > 0 {
			if err := b.newWorld(ctx, kind); err != nil {
				return err
			}
		}
		if err := b.world(ctx, i == 0, i == len(o.Kinds)-1); err != nil {
			return err
		}
	}
	if len(b.reads) > 0 {
		b.readFigures()
	}
	if b.rss > 0 {
		b.add(Figure{Stage: StageRun, What: "peak RSS of mim run, any night", Measured: mibs(b.rss),
			Target: "< 200 MiB", Met: met(b.rss < 200*mib)})
	}
	if o.want(StageAirflow) {
		if err := b.airflow(ctx); err != nil {
			return err
		}
	}
	return nil
}

// world measures one kind of Moodle read on a fresh world: its two nights,
// with, on the first world, the transform and the IMS export on the first
// night's marts, and on the last the intra-day cycle after the nights.
func (b *bench) world(ctx context.Context, first, last bool) error {
	o := &b.o
	needMarts := first && (o.want(StageTransform) || o.want(StageIMS)) || last && o.want(StageIntraday)
	if !o.want(StageRun) && !needMarts {
		return nil
	}
	if first {
		if err := b.resetRaw(ctx); err != nil {
			return err
		}
	}
	if err := b.night(ctx, 1, !o.want(StageRun)); err != nil {
		return err
	}
	if first && o.want(StageTransform) {
		if err := b.transform(ctx); err != nil {
			return err
		}
	}
	if first && o.want(StageIMS) {
		if err := b.ims(ctx); err != nil {
			return err
		}
	}
	if o.want(StageRun) {
		if err := b.night(ctx, 2, false); err != nil {
			return err
		}
	}
	if last && o.want(StageIntraday) {
		return b.intraday(ctx)
	}
	return nil
}

// newWorld replaces the warehouse and the simulated sites with fresh ones,
// for the next kind of Moodle read: its first night is a first night too.
func (b *bench) newWorld(ctx context.Context, kind string) error {
	b.logf("a fresh world (warehouse and sites) for the nights reading Moodle by %s", kindName(kind))
	b.stopSites()
	b.pool.Close()
	b.pool = nil
	if err := b.db.drop(ctx); err != nil {
		return err
	}
	b.db.close()
	b.db = nil
	b.kind = kind
	return b.setup(ctx)
}

// close stops the sites and drops the scratch database (unless kept).
func (b *bench) close() {
	b.stopSites()
	if b.pool != nil {
		b.pool.Close()
	}
	if b.db != nil && !b.o.Keep {
		if err := b.db.drop(context.Background()); err != nil {
			b.logf("%v", err)
		}
	}
	if b.db != nil {
		b.db.close()
	}
	if b.dir != "" && b.o.Dir == "" && !b.o.Keep {
		_ = os.RemoveAll(b.dir)
	}
}

// stopSites stops the simulated sites.
func (b *bench) stopSites() {
	for _, s := range b.sites {
		_ = s.site.Close()
	}
	b.sites = nil
}

func (b *bench) path(name string) string { return filepath.Join(b.dir, name) }
