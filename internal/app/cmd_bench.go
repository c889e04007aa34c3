package app

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mimwarehouse/mim/internal/bench"
	"github.com/mimwarehouse/mim/internal/demo"
	"github.com/mimwarehouse/mim/internal/synth"
)

// How long the whole bench takes (README.md says the same; a test checks).
const (
	BenchSmallTime = "under a minute"
	BenchUCLTime   = "about 12 minutes"
)

var benchCommand = Command{
	Name:     "bench",
	Group:    "Operations",
	Summary:  "measure the whole pipeline at a scale, each figure beside its physical reference (no configuration needed)",
	Usage:    "mim bench [--scale small|medium|ucl] [--latency 20ms] [--sites N] [--only STAGE,...] [--moodle ws,db] [--keep]",
	NoConfig: true,
	Help: `Measures MIM on a synthetic university in one run, each figure printed beside
a reference measured in the same run, with the ratio and the target:

  load       the raw loader (first load, unchanged re-run, 10% changed)
             against psql's \copy of the same rows; needs psql
             (postgresql-client, which ./scripts/setup installs)
  extract    the first Moodle site read alone by mim extract: over its web
             services, requests/s against concurrency ÷ latency; from its
             database, against the web services
  run        mim run over every simulated site: a first night and an
             unchanged second night, task by task, with each site's
             extraction rate within the night, once per way of reading the
             sites (--moodle: ws their web services, db their databases,
             each on a fresh world); what each site's read cost in
             requests and queries; the peak RSS of mim run
  transform  mim transform on the first night's raw: layers, slowest models
  ims        each site's full IMS export against its query alone, MB/s
  intraday   mim run --cycle intraday after the nights, against a night
  airflow    the request pattern of the Airflow ELT seed (a call at a time,
             one second after each) on the same sites: sampled, then
             estimated in full (it takes hours)

The mim commands are run as child processes of this one (this binary), so
the table gives each its own wall time, CPU time and peak RSS (getrusage);
the simulated sites live in the bench's own process.

Everything happens in a scratch database, mim_bench (--database), on the
PostgreSQL server that MIM_BENCH_DATABASE_URL names (default the local one
of ./scripts/setup: postgres://mim:mim@127.0.0.1:5432/postgres); it is
dropped first and at the end (--keep leaves it), and a database labelled
with any environment other than "bench" is refused, never dropped. Nothing
else is touched.

Sizes, with the time the whole bench takes on the 2-core development machine
(the README has the same): small: ` + BenchSmallTime + `; medium (5,000
students, 3 sites); ucl: 50,000 students, 4 sites at 20 ms: ` + BenchUCLTime + `.`,
	Setup: func(fs *flag.FlagSet) Runner {
		scale := fs.String("scale", "small", "`size` of the university: small, medium or ucl")
		latency := fs.Duration("latency", 20*time.Millisecond, "simulated sites answer every call after `D` (0: at once)")
		sites := fs.Int("sites", 0, "simulate only the first `N` sites of the scale (0: all; ucl has 4)")
		concurrency := fs.Int("concurrency", 8, "requests in flight per site (`N`)")
		var only []string
		fs.Func("only", "run only these `STAGES` (load, extract, run, transform, ims, intraday, airflow; comma-separated)", listFlag(&only))
		var kinds []string
		fs.Func("moodle", "read the sites by these `WAYS` (ws: web services, db: their databases; default both)", listFlag(&kinds))
		database := fs.String("database", bench.DefaultDatabase, "scratch database `NAME` (dropped first and afterwards)")
		keep := fs.Bool("keep", false, "keep the scratch database and files afterwards")
		psql := fs.String("psql", "psql", "the psql `binary` of the load stage")
		records := fs.Int("load-records", 0, "records per load phase (`N`; default small 100,000, medium 300,000, ucl 1,000,000)")
		sample := fs.Duration("airflow-sample", 30*time.Second, "how long the Airflow pattern really runs (`D`) before it is estimated")
		seed := fs.Uint64("seed", 1, "random `seed` of the synthetic university")
		profile := fs.String("profile", "", "have the mim commands run write CPU and peak-heap profiles (pprof) into `DIR`")
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) != 0 {
				return Usagef("bench takes no arguments (did you mean --only %s?)", args[0])
			}
			sc, err := synth.ParseScale(*scale)
			if err != nil {
				return Usagef("--scale: %v", err)
			}
			for _, s := range only {
				if !slices.Contains(bench.Stages, s) {
					return Usagef("--only: %q is not a stage (stages: %s)", s, strings.Join(bench.Stages, ", "))
				}
			}
			for _, k := range kinds {
				if !slices.Contains(bench.Kinds, k) {
					return Usagef("--moodle: %q is not a way of reading the sites (%s)", k, strings.Join(bench.Kinds, ", "))
				}
			}
			if *sites < 0 || *concurrency < 1 || *concurrency > 64 || *records < 0 || *sample <= 0 {
				return Usagef("--sites, --load-records must not be negative, --concurrency is 1 to 64, --airflow-sample positive")
			}
			if *profile != "" {
				if err := os.MkdirAll(*profile, 0o755); err != nil {
					return fmt.Errorf("--profile: %w", err)
				}
			}
			lat := *latency
			if lat == 0 {
				lat = -1 // none, not the default
			}
			fmt.Fprintf(e.Stdout, "mim bench: scale %s; progress below, the table at the end\n", sc)
			rep, err := bench.Run(ctx, bench.Options{Scale: sc, Seed: *seed, Year: demo.CurrentAcademicYear(time.Now()), Latency: lat,
				Sites: *sites, Concurrency: *concurrency, Only: only, Kinds: kinds, Database: *database, Keep: *keep, Psql: *psql,
				LoadRecords: *records, AirflowSample: *sample, ProfileDir: *profile, Log: e.Stdout})
			if rep != nil {
				fmt.Fprintln(e.Stdout)
				rep.Write(e.Stdout)
			}
			return err
		}
	},
}
