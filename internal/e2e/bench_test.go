package e2e_test

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/synth/synthworld"
	"github.com/mimwarehouse/mim/transform"
)

// e2eScale is the institution the benchmark builds: MIM_E2E_SCALE=small
// (the default), medium or ucl.
func e2eScale(tb testing.TB) synth.Scale { return synthworld.ScaleFromEnv(tb, "MIM_E2E_SCALE") }

// BenchmarkPipelineTransform builds the synthetic institution, extracts it
// with the real extractors (Moodle through the simulator, no latency) and
// maps it, then times full transforms: every model, check and test in one
// transaction, the nightly case of tables that already exist. The set-up
// steps and the per-model timings of the last transform are printed.
//
//	MIM_REQUIRE_DB=1 MIM_E2E_SCALE=ucl go test ./internal/e2e -run '^$' -bench PipelineTransform -benchtime 2x -timeout 60m
func BenchmarkPipelineTransform(b *testing.B) {
	scale := e2eScale(b)
	w := newWorld(b, synth.Options{Scale: scale})
	w.extract(b)
	w.mapAndSet(b)
	p := project(b)
	var first *transform.Result
	var err error
	w.Timed("first transform (creates every table)", func() { first, err = w.Transform(b, p) })
	if err != nil {
		b.Fatal(err)
	}
	_ = first
	var last *transform.Result
	for b.Loop() {
		res, err := w.Transform(b, p)
		if err != nil {
			b.Fatal(err)
		}
		last = res
	}
	var rows int64
	for _, m := range last.Models {
		rows += max(m.Rows, 0)
	}
	b.ReportMetric(float64(rows), "rows/op")
	// The transform timed is a correct one: the marts hold what synth planted.
	assertManifest(b, w)
	checkDetails(b, w)
	// Printed, not logged: the testing package truncates a benchmark's log.
	fmt.Fprint(os.Stderr, report(scale, w, last))
}

// report lays out the set-up steps and one transform's timings, layer by
// layer and model by model, slowest first.
func report(scale synth.Scale, w *world, res *transform.Result) string {
	var sb strings.Builder
	m := w.In.Manifest
	fmt.Fprintf(&sb, "scale %s: %d students, %d registrations, %d CMIS groups, %d sites\n", scale, m.Students, m.Registrations, m.CMISGroups, len(m.Sites))
	for _, s := range w.Timings {
		fmt.Fprintf(&sb, "  %-52s %10s\n", s.Name, s.D.Round(time.Millisecond))
	}
	ms := append([]transform.ModelResult(nil), res.Models...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].Duration > ms[j].Duration })
	layer := map[string]time.Duration{}
	var build time.Duration
	for _, x := range ms {
		layer[x.Model[:strings.IndexByte(x.Model, '.')]] += x.Duration
		build += x.Duration
	}
	var hooks time.Duration
	for _, h := range res.Hooks {
		hooks += h.Duration
	}
	fmt.Fprintf(&sb, "transform: %s in all; models %s (stg %s, int %s, mart %s), hooks %s, checks and tests (%d) %s\n",
		res.Duration.Round(time.Millisecond), build.Round(time.Millisecond), layer["stg"].Round(time.Millisecond),
		layer["int"].Round(time.Millisecond), layer["mart"].Round(time.Millisecond), hooks.Round(time.Millisecond), res.Checked,
		(res.Duration - build - hooks).Round(time.Millisecond))
	for _, x := range ms {
		fmt.Fprintf(&sb, "  %-34s %10d rows %10s\n", x.Model, x.Rows, x.Duration.Round(time.Millisecond))
	}
	return sb.String()
}
