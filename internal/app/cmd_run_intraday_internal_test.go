package app

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/night"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/schedule"
	"github.com/mimwarehouse/mim/internal/serve"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// schedule.intraday is a job of mim serve: the intraday cycle, mailed (the
// cycle mails only a refusal or a failure), and a due time that comes
// while a night holds the run lock is skipped and recorded as the night's
// own would be.
func TestServeRunsTheIntradaySchedule(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	cfg, err := config.Parse([]byte("environment: test\nwarehouse: {dsn: \"${DSN}\"}\n"+
		"schedule: {nightly: \"15 0 * * *\", intraday: \"5-59/15 8-18 * * 1-5\"}\n"),
		func(string) (string, bool) { return db.DSN.Reveal(), true })
	if err != nil {
		t.Fatal(err)
	}
	jobs := serveJobs(cfg)
	if len(jobs) != 2 || jobs[1].name != "intraday" {
		t.Fatalf("jobs %+v", jobs)
	}
	j := jobs[1]
	if j.opts.Cycle != night.Intraday || !j.opts.Mail || j.opts.Job != "intraday" || len(j.opts.Stages) != 0 {
		t.Errorf("intraday: %+v", j.opts)
	}

	e := &Env{Stdout: io.Discard, Stderr: io.Discard, Logger: slog.New(slog.DiscardHandler)}
	e.SetConfig(cfg)
	defer e.Close()
	lock, err := warehouse.AcquireRunLock(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	// Only the transform, so nothing needs sources: the lock stops it first.
	j.opts.Stages = []string{StageTransform}
	due := time.Date(2026, 3, 30, 10, 5, 0, 0, time.UTC)
	if err := (serve.Jobs{Pool: db.Pool, Logger: e.Logger, Host: "test-host"}).RunDue(ctx, j.serveJob(e), schedule.MustParse(j.expr, time.UTC), due); err != nil {
		t.Fatalf("a locked-out time is not an error: %v", err)
	}
	var kind, note string
	if err := db.Pool.QueryRow(ctx, `SELECT kind, note FROM ctl.schedule_event WHERE job = 'intraday' AND due_at = $1 AND kind <> 'started'`,
		due).Scan(&kind, &note); err != nil {
		t.Fatal(err)
	}
	if kind != "skipped" || note == "" {
		t.Errorf("recorded %s (%s); want skipped with the holder", kind, note)
	}
}

// mim run --cycle: the help says what the intraday cycle is, and a cycle
// or stage it does not have is a usage error before anything runs.
func TestRunCycleCommandLine(t *testing.T) {
	var out, errb strings.Builder
	if code := Main(context.Background(), []string{"help", "run"}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "--cycle intraday runs the day's short cycle") || !strings.Contains(out.String(), "--cycle CYCLE") {
		t.Errorf("help run: %d\n%s", code, out.String())
	}
	// The cycle is checked before the warehouse is dialled.
	path := filepath.Join(t.TempDir(), "mim.yaml")
	if err := os.WriteFile(path, []byte("environment: test\nwarehouse: {dsn: \"postgres://mim@127.0.0.1:1/none\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--cycle", "hourly"}, `--cycle "hourly" is not a cycle`},
		{[]string{"--cycle", "intraday", "--stages", "groups"}, "the intraday cycle has no groups stage"},
	} {
		out.Reset()
		errb.Reset()
		code := Main(context.Background(), append([]string{"--config", path, "run"}, c.args...), &out, &errb)
		if code != ExitUsage || !strings.Contains(errb.String(), c.want) || !strings.Contains(errb.String(), "usage: mim run") {
			t.Errorf("run %v: exit %d, want 2 and %q\n%s", c.args, code, c.want, errb.String())
		}
	}
}
