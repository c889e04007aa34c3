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

// How long the whole bench takes: help/bench.txt shows them in place of
// {small} and {ucl}; README.md says the same (a test checks).
const (
	BenchSmallTime = "under a minute"
	BenchUCLTime   = "about 20 minutes"
)

var benchCommand = Command{
	Name:     "bench",
	Group:    "Operations",
	Summary:  "measure the whole pipeline at a scale, each figure beside its physical reference (no configuration needed)",
	Usage:    "mim bench [--scale small|medium|ucl] [--latency 20ms] [--sites N] [--only STAGE,...] [--moodle ws,db] [--keep]",
	NoConfig: true,
	Help:     strings.NewReplacer("{small}", BenchSmallTime, "{ucl}", BenchUCLTime).Replace(helpText("bench")),
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
