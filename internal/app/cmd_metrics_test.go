package app_test

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mimwarehouse/mim/dashboards"
	"github.com/mimwarehouse/mim/internal/app"
	"github.com/mimwarehouse/mim/internal/demo"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/synth"
)

// childArg makes this test binary act as the mim binary, so a test can run
// mim commands as separate processes.
const childArg = "mim-app-child"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		os.Exit(app.Main(context.Background(), os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// child is `mim ARGS...` in a process of its own.
func child(ctx context.Context, t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exec.CommandContext(ctx, exe, append([]string{childArg}, args...)...)
}

// TestServeShowsRunsOfOtherProcesses is the compose topology: the demo fills
// a warehouse (its simulated sites stay up), a `mim run` in a process of its
// own runs another night with the demo's configuration, and a `mim serve` in
// a third process, which ran nothing, serves every series the Grafana
// dashboards and the alert rules query, read from the ledger.
func TestServeShowsRunsOfOtherProcesses(t *testing.T) {
	db := pgtest.NewEmpty(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := t.TempDir()
	ready := make(chan string, 1)
	var demoOut syncBuffer
	done := make(chan error, 1)
	go func() {
		e := &app.Env{Stdout: &demoOut, Stderr: io.Discard}
		done <- app.RunDemo(ctx, e, demo.Options{Scale: synth.Small, Nights: 1, Serve: true, Listen: "127.0.0.1:0",
			Out: out, Seed: 1, DSN: db.DSN.Reveal(), Ready: func(url string) { ready <- url }})
	}()
	var demoURL string
	select {
	case demoURL = <-ready:
	case err := <-done:
		t.Fatalf("the demo ended before serving: %v\n%s", err, demoOut.String())
	case <-time.After(5 * time.Minute):
		t.Fatalf("the demo never served\n%s", demoOut.String())
	}
	cfg := filepath.Join(out, "mim.yaml")

	// Process B: a second night, as cron would start it.
	run := child(ctx, t, "--config", cfg, "run", "--no-mail", "--progress", "off", "--if-not-paused")
	if b, err := run.CombinedOutput(); err != nil {
		t.Fatalf("mim run in its own process: %v\n%s", err, b)
	}

	// Process C: mim serve, which runs nothing itself.
	serve := child(ctx, t, "--config", cfg, "serve", "--no-schedule", "--listen", "127.0.0.1:0")
	stdout, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	serve.Stderr = io.Discard
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = serve.Process.Kill(); _ = serve.Wait() }()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := regexp.MustCompile(`status page (http://\S+/)`).FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	var serveURL string
	select {
	case serveURL = <-addr:
	case <-time.After(time.Minute):
		t.Fatal("mim serve never said where it listens")
	}

	served := scrapeMetrics(t, serveURL+"metrics")
	demo := scrapeMetrics(t, demoURL+"metrics")

	// The ledger's series count both nights; the serving process made no
	// Moodle call itself, yet shows the calls of the runs.
	if v := served.sum("mim_runs_total", "command", "run", "status", "succeeded"); v != 2 {
		t.Errorf("mim_runs_total{command=run,status=succeeded} = %v, want 2 (the demo's night and the other process's)", v)
	}
	if v := served.sum("mim_moodle_requests_total", "site", "main"); v == 0 {
		t.Error("mim serve shows no Moodle calls of the runs")
	}
	if v := served.sum("mim_live_moodle_requests_total"); v != 0 {
		t.Errorf("mim serve made %v Moodle calls itself", v)
	}
	var perRun int64
	if err := db.Pool.QueryRow(ctx, `SELECT count(DISTINCT run_id) FROM ctl.moodle_request`).Scan(&perRun); err != nil || perRun != 2 {
		t.Errorf("Moodle calls recorded under %d runs, want both (%v)", perRun, err)
	}

	// Every series a dashboard or an alert reads is there, with the labels
	// it groups and filters by. Live series are this process's own: the
	// demo's serve (which ran a night in-process) has them.
	queries, err := dashboards.PromQueries()
	if err != nil {
		t.Fatal(err)
	}
	metricRE := regexp.MustCompile(`\b(mim_[a-z0-9_]+)\b`)
	byRE := regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	matcherRE := regexp.MustCompile(`([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*"`)
	checked := 0
	for _, q := range queries {
		names := metricRE.FindAllString(q.Expr, -1)
		var labels []string
		for _, m := range byRE.FindAllStringSubmatch(q.Expr, -1) {
			for _, l := range strings.Split(m[1], ",") {
				if l = strings.TrimSpace(l); l != "" {
					labels = append(labels, l)
				}
			}
		}
		for _, m := range matcherRE.FindAllStringSubmatch(q.Expr, -1) {
			labels = append(labels, m[1])
		}
		for _, name := range names {
			from := served
			if strings.HasPrefix(name, "mim_live_") {
				from = demo
			}
			have := from.labels(name)
			if have == nil {
				t.Errorf("%s reads %s, which mim serve does not expose", q.Where, name)
				continue
			}
			for _, l := range labels {
				if !slices.Contains(have, l) && l != "job" {
					t.Errorf("%s: %s has no label %q (has %v)", q.Where, name, l, have)
				}
			}
			checked++
		}
	}
	if checked < 15 {
		t.Errorf("only %d series checked: are the dashboards read?", checked)
	}
	if slices.Contains(served.labels("mim_moodle_requests_total"), "instance") {
		t.Error("a metric is labelled instance, which Prometheus owns")
	}

	// Prometheus's own lint of the exposition, when its tool is here.
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(served.text)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, b)
		}
	} else if pgtest.Required() {
		t.Errorf("promtool is not installed (./scripts/setup installs it): %v", err)
	}
	cancel()
	<-done
}

// scrape is one /metrics page, parsed.
type scrape struct {
	text     string
	families map[string]*dto.MetricFamily
}

func scrapeMetrics(t *testing.T, url string) scrape {
	t.Helper()
	text := fetch(t, url)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return scrape{text: text, families: fams}
}

// labels are the label names of a family's first sample; nil when the
// family is missing or has no sample. A histogram adds le.
func (s scrape) labels(name string) []string {
	f := s.families[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")]
	if f == nil || len(f.GetMetric()) == 0 {
		return nil
	}
	out := []string{}
	for _, l := range f.GetMetric()[0].GetLabel() {
		out = append(out, l.GetName())
	}
	if f.GetType() == dto.MetricType_HISTOGRAM {
		out = append(out, "le")
	}
	return out
}

// sum adds up the samples of name whose labels include the pairs.
func (s scrape) sum(name string, pairs ...string) float64 {
	f := s.families[name]
	if f == nil {
		return 0
	}
	var total float64
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(pairs); i += 2 {
			if have[pairs[i]] != pairs[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		}
	}
	return total
}
