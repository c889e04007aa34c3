package app_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/internal/app"
	"github.com/mimwarehouse/mim/internal/demo"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// BenchmarkNightlyRun measures a whole `mim run` against simulated sites:
// the first night (reported as first_run_s) and then unchanged re-runs
// (ns/op). MIM_BENCH_SCALE picks the scale (default small), MIM_BENCH_LATENCY
// the simulated sites' latency per call (default 0, e.g. 20ms).
func BenchmarkNightlyRun(b *testing.B) {
	scale := synth.Small
	if s := os.Getenv("MIM_BENCH_SCALE"); s != "" {
		var err error
		if scale, err = synth.ParseScale(s); err != nil {
			b.Fatal(err)
		}
	}
	var latency time.Duration
	if s := os.Getenv("MIM_BENCH_LATENCY"); s != "" {
		var err error
		if latency, err = time.ParseDuration(s); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	db := pgtest.NewEmpty(b)
	if _, err := warehouse.Migrate(ctx, db.Pool, nil); err != nil {
		b.Fatal(err)
	}
	if _, _, err := warehouse.EnsureDeployment(ctx, db.Pool, demo.Environment, "bench"); err != nil {
		b.Fatal(err)
	}
	in, err := synth.Generate(synth.Options{Scale: scale})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := in.Write(ctx, db.Pool, "", nil); err != nil {
		b.Fatal(err)
	}
	if _, err := synth.InsertMappings(ctx, db.Pool, in.Mappings, "bench"); err != nil {
		b.Fatal(err)
	}
	var sites []demo.Site
	for _, s := range in.Sites {
		site, err := moodletest.New(*s.State, moodletest.WithLatency(latency))
		if err != nil {
			b.Fatal(err)
		}
		if err := site.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { site.Close() })
		sites = append(sites, demo.Site{Name: s.Name, URL: site.URL(), Token: site.Token()})
	}
	cfg, err := demo.Config(db.DSN.Reveal(), b.TempDir(), in.Year, sites)
	if err != nil {
		b.Fatal(err)
	}
	e := &app.Env{Stdout: io.Discard, Stderr: io.Discard, Logger: slog.New(slog.DiscardHandler)}
	e.SetConfig(cfg)
	defer e.Close()
	run := func() {
		res, err := app.RunPipeline(ctx, e, app.RunOptions{Progress: "off"})
		if res == nil || res.Status() != ledger.Succeeded {
			b.Fatalf("run: %v", err)
		}
	}
	start := time.Now()
	run()
	first := time.Since(start)
	b.ResetTimer()
	for b.Loop() {
		run()
	}
	b.ReportMetric(first.Seconds(), "first_run_s")
}
