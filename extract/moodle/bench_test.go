package moodle_test

import (
	"context"
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/extract"
	moodlex "github.com/mimwarehouse/mim/extract/moodle"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/load"
	"github.com/mimwarehouse/mim/moodle"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// discardSink counts records and drops them: it isolates the cost of
// reading Moodle from the cost of landing.
type discardSink struct{ records atomic.Int64 }

func (s *discardSink) Entity(context.Context, extract.EntityID) (extract.EntityWriter, error) {
	return &discardWriter{s: s}, nil
}

type discardWriter struct{ s *discardSink }

func (w *discardWriter) Write(context.Context, extract.Record) error { w.s.records.Add(1); return nil }
func (w *discardWriter) ScopeComplete(string)                        {}
func (w *discardWriter) ScopeFailed(string, error)                   {}
func (w *discardWriter) RowError(string, error)                      {}
func (w *discardWriter) Commit(context.Context) (extract.Result, error) {
	return extract.Result{}, nil
}
func (w *discardWriter) Abort() {}

// BenchmarkExtractSite extracts the main site of the synthetic institution
// (scale medium: 984 courses, 5,385 users, 15,960 enrolments; ucl with
// MIM_BENCH_FULL=1) from the simulator answering every request after 20 ms,
// with concurrency 8 and no rate limit, and reports the requests made and
// the wall time against the ideal of requests × 20 ms / 8. Run it with
//
//	go test -run '^$' -bench ExtractSite -benchtime 1x ./extract/moodle/
//
// "discard" drops the records; "loader" lands them in a real PostgreSQL
// through the raw loader (first load, then an unchanged re-run).
// MIM_BENCH_ENTITIES=enrolments,groups limits the entities read.
func BenchmarkExtractSite(b *testing.B) {
	const latency, concurrency = 20 * time.Millisecond, 8
	st := benchSite(b)
	site := moodletest.NewServer(b, *st, moodletest.WithLatency(latency))
	cfg := &moodlex.Site{Name: "main", URL: site.URL(), Environment: "test", Concurrency: concurrency, PageSize: 1000,
		Entities: append([]string(nil), moodlex.DefaultEntityNames...)}
	source := func(b *testing.B, opts ...moodlex.Option) *moodlex.Source {
		c, err := moodle.New(cfg.Name, cfg.URL, site.Token(), moodle.WithRate(0), moodle.WithConcurrency(concurrency))
		if err != nil {
			b.Fatal(err)
		}
		var ents []string
		if e := os.Getenv("MIM_BENCH_ENTITIES"); e != "" {
			ents = strings.Split(e, ",")
		}
		src, err := moodlex.New(c, cfg, extract.Options{Entities: ents}, opts...)
		if err != nil {
			b.Fatal(err)
		}
		return src
	}
	measure := func(b *testing.B, name string, run func() error) {
		calls := site.Calls("")
		start := time.Now()
		if err := run(); err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		requests := site.Calls("") - calls
		ideal := time.Duration(requests) * latency / concurrency
		b.ReportMetric(float64(requests), "requests")
		b.ReportMetric(elapsed.Seconds(), "s")
		b.ReportMetric(elapsed.Seconds()/ideal.Seconds(), "x_ideal")
		b.Logf("%s: %d requests in %s; ideal %s (requests × %s / %d): %.2f× the ideal", name, requests,
			elapsed.Round(time.Millisecond), ideal.Round(time.Millisecond), latency, concurrency, elapsed.Seconds()/ideal.Seconds())
	}

	b.Run("discard", func(b *testing.B) {
		for b.Loop() {
			sink := &discardSink{}
			peak := heapPeak()
			measure(b, "discard", func() error { return source(b).Extract(context.Background(), sink) })
			extra := peak()
			b.ReportMetric(float64(sink.records.Load()), "records")
			b.ReportMetric(float64(extra)/(1<<20), "MB_live_peak")
			b.Logf("the live heap rose by at most %.1f MiB above the simulator's, as garbage collections marked it", float64(extra)/(1<<20))
		}
	})
	b.Run("loader", func(b *testing.B) {
		db := pgtest.New(b)
		for b.Loop() {
			for _, phase := range []string{"first load", "unchanged re-run"} {
				measure(b, phase, func() error {
					ctx := context.Background()
					run, err := ledger.Begin(ctx, db.Pool, "bench", "test", "bench", nil)
					if err != nil {
						return err
					}
					defer run.Finish(ctx, ledger.Succeeded, 0, nil)
					return source(b, moodlex.WithWarehouse(db.Pool)).Extract(ctx, load.New(db.Pool, run))
				})
			}
		}
	})
}

// benchSite is the main site of the synthetic institution the benchmarks
// read: scale medium, or ucl with MIM_BENCH_FULL=1.
func benchSite(b *testing.B) *moodletest.State {
	scale := synth.Medium
	if os.Getenv("MIM_BENCH_FULL") != "" {
		scale = synth.UCL
	}
	in, err := synth.Generate(synth.Options{Scale: scale})
	if err != nil {
		b.Fatal(err)
	}
	st := in.Sites[0].State
	b.Logf("site %s (%s): %d courses, %d users, %d enrolments, %d groups, %d groupings", in.Sites[0].Name, scale,
		len(st.Courses), len(st.Users), len(st.Enrolments), len(st.Groups), len(st.Groupings))
	return st
}

// heapPeak samples the live heap (as the last garbage collection marked
// it: the heap in use would mostly measure how much garbage the collector
// lets pile up over the simulator's large state) until the returned
// function is called, which returns the highest rise above the start.
func heapPeak() func() uint64 {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	live := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	runtime.GC()
	base := live()
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if v := live(); v > base && v-base > peak.Load() {
					peak.Store(v - base)
				}
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-stopped
		return peak.Load()
	}
}
