package bench_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/internal/app"
	"github.com/mimwarehouse/mim/internal/bench"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/synth"
)

// childArg makes this test binary act as mim: the bench runs the commands
// it times as child processes of "the mim binary", here this one.
const childArg = "mim-bench-child"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		os.Exit(app.Main(context.Background(), os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestBenchRunsEveryStage runs the whole bench on the small university,
// briefly: every stage must produce its figures, and every mim command it
// ran must have succeeded.
func TestBenchRunsEveryStage(t *testing.T) {
	pgtest.New(t) // skips without a PostgreSQL, fails without one in CI
	if _, err := exec.LookPath("psql"); err != nil {
		if pgtest.Required() {
			t.Fatalf("the load stage needs psql (./scripts/setup installs it): %v", err)
		}
		t.Skip("no psql")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	rep, err := bench.Run(context.Background(), bench.Options{
		Scale: synth.Small, Latency: 2 * time.Millisecond, Server: pgtest.AdminDSN(),
		Database: fmt.Sprintf("mim_bench_test_%d", os.Getpid()), LoadRecords: 3000, AirflowSample: 3 * time.Second, Log: &log,
		Command: func(ctx context.Context, args ...string) *exec.Cmd {
			return exec.CommandContext(ctx, exe, append([]string{childArg}, args...)...)
		},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	stages := map[string]int{}
	for _, f := range rep.Figures {
		stages[f.Stage]++
		if f.Measured == "" || f.Measured == "not measured" {
			t.Errorf("figure %s %q has no measurement", f.Stage, f.What)
		}
	}
	for _, s := range bench.Stages {
		if stages[s] == 0 {
			t.Errorf("stage %s produced no figure", s)
		}
	}
	if len(rep.Children) < 7 {
		t.Errorf("%d mim commands were run, want two extracts, two nights of each kind and transform", len(rep.Children))
	}
	for _, c := range rep.Children {
		if c.Exit != 0 {
			t.Errorf("%s exited %d", c.Command, c.Exit)
		}
		if c.Wall <= 0 || c.CPU <= 0 {
			t.Errorf("%s: wall %s, CPU %s", c.Command, c.Wall, c.CPU)
		}
	}
	var out strings.Builder
	rep.Write(&out)
	for _, want := range []string{"× COPY", "of ideal", "MB/s", "Airflow", "read by database", " queries", "× web services", "peak RSS of mim run"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, out.String())
		}
	}
}
