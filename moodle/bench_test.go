package moodle_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/moodle"
	"github.com/mimwarehouse/mim/moodle/moodletest"
	"github.com/mimwarehouse/mim/moodle/moodletest/recorded"
)

// BenchmarkThroughput measures requests per second through the client
// against a simulated site that takes 20 ms per request, at concurrency 1,
// 8 and 32, beside the ideal concurrency/latency. MIM_BENCH_LATENCY
// changes the latency (e.g. 50ms).
//
//	go test -run - -bench Throughput ./moodle/
func BenchmarkThroughput(b *testing.B) {
	latency := 20 * time.Millisecond
	if v := os.Getenv("MIM_BENCH_LATENCY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		latency = d
	}
	for _, conc := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			site := moodletest.NewServer(b, recorded.State(), moodletest.WithLatency(latency))
			c, err := moodle.New("bench", site.URL(), site.Token(), moodle.WithRate(0), moodle.WithConcurrency(conc))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			// Warm the connections so the measurement is of steady state.
			var wg sync.WaitGroup
			for range conc {
				wg.Add(1)
				go func() { defer wg.Done(); _, _ = c.GetCourseGroups(ctx, 14) }()
			}
			wg.Wait()
			work := make(chan struct{}, b.N)
			for range b.N {
				work <- struct{}{}
			}
			close(work)
			errs := make(chan error, conc)
			b.ResetTimer()
			start := time.Now()
			for range conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range work {
						if _, err := c.GetCourseGroups(ctx, 14); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			rps := float64(b.N) / elapsed.Seconds()
			ideal := float64(conc) / latency.Seconds()
			b.ReportMetric(rps, "req/s")
			b.ReportMetric(ideal, "ideal-req/s")
			b.ReportMetric(rps/ideal*100, "%-of-ideal")
		})
	}
}
