package app_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/internal/app"
	"github.com/mimwarehouse/mim/internal/ledger/ledgertest"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/statuspage/browsertest"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestServe(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	// The daemon last handled the nightly job four days ago, and a run
	// succeeded then.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO ctl.schedule_event (job, schedule, due_at, kind, status, host) VALUES ('nightly', '@daily', date_trunc('day', now()) - interval '4 days', 'finished', 'succeeded', 'old-host')`); err != nil {
		t.Fatal(err)
	}
	ledgertest.AddPast(t, db.Pool, ledgertest.Past{Command: "run", Status: "succeeded", Host: "old-host", Version: "v0", Ago: 4 * 24 * time.Hour, Took: 5 * time.Minute})
	addr := freePort(t)
	cfg := writeConfig(t, fmt.Sprintf(`environment: test
warehouse: {dsn: %q}
schedule:
  nightly: "@daily"
  groups: "CRON_TZ=Europe/London */30 7-19 * * 1-5"
serve: {listen: %q}
`, db.DSN.Reveal(), addr))
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- app.Main(runCtx, []string{"--config", cfg, "serve"}, &stdout, &stderr) }()
	base := "http://" + addr + "/"
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mim serve never answered /healthz (%v)\n%s\n%s", err, stdout.String(), stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if h := fetch(t, base+"healthz"); !strings.Contains(h, `"database":"ok"`) || !strings.Contains(h, `"last_successful_run"`) {
		t.Errorf("/healthz: %s", h)
	}
	metrics := fetch(t, base+"metrics")
	for _, want := range []string{"mim_last_success_timestamp_seconds{stage=\"run\"} 1", "go_goroutines ", "process_start_time_seconds "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	page := fetch(t, base)
	for _, want := range []string{"<h1>MIM status</h1>", "CRON_TZ=Europe/London */30 7-19 * * 1-5", "@daily",
		"time(s) passed while mim serve was not running"} {
		if !strings.Contains(page, want) {
			t.Errorf("the status page lacks %q", want)
		}
	}
	// The page renders in a real browser.
	if browser := browsertest.Chromium(t); browser != "" {
		dom := string(browsertest.Headless(t, browser, base, "--dump-dom"))
		if !strings.Contains(dom, `<span class="status missed">missed</span>`) {
			t.Errorf("chromium's DOM lacks the missed run:\n%.2000s", dom)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("mim serve exit %d\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("mim serve did not stop")
	}
	var missed, firstStart int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE job = 'nightly' AND kind = 'missed'),
		count(*) FILTER (WHERE job = 'groups' AND kind = 'started') FROM ctl.schedule_event`).Scan(&missed, &firstStart); err != nil {
		t.Fatal(err)
	}
	if missed != 1 || firstStart != 1 {
		t.Errorf("schedule events: %d missed nightly (want 1), %d first starts of groups (want 1)", missed, firstStart)
	}
	if !strings.Contains(stderr.String(), "scheduled run missed") {
		t.Errorf("the missed run was not logged:\n%s", stderr.String())
	}
}

func TestServeUsage(t *testing.T) {
	code, out, _ := mim(t, "help", "serve")
	if code != 0 || !strings.Contains(out, "/metrics") || !strings.Contains(out, "--no-schedule") {
		t.Errorf("help serve: %d\n%s", code, out)
	}
	cfg := writeConfig(t, "environment: test\n")
	if code, _, errOut := mim(t, "--config", cfg, "serve", "--listen", "nowhere"); code != 2 || !strings.Contains(errOut, "not host:port") {
		t.Errorf("--listen nowhere: %d %s", code, errOut)
	}
}
