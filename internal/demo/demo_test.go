package demo_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/demo"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/pipeline"
)

// hooksThatMustNotRun fail the test if the demo gets as far as the night.
func hooksThatMustNotRun(t *testing.T, out *bytes.Buffer) demo.Hooks {
	return demo.Hooks{Out: out,
		Start: func(*config.Config, *pgxpool.Pool) { t.Fatal("the demo started") },
		Night: func(context.Context, io.Writer) (*pipeline.Result, error) {
			t.Fatal("the demo ran a night")
			return nil, nil
		}}
}

// --serve on a port that is taken fails at once, before the demo runs,
// as a usage error (exit 2).
func TestServeChecksItsPortFirst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out bytes.Buffer
	err = demo.Run(context.Background(), demo.Options{Serve: true, Listen: ln.Addr().String(), Out: t.TempDir(),
		DSN: "postgres://nobody@127.0.0.1:1/none"}, hooksThatMustNotRun(t, &out)) // the database is never reached
	var le *demo.ListenError
	if !errors.As(err, &le) || le.ExitCode() != 2 || !strings.Contains(err.Error(), "--serve cannot listen on "+ln.Addr().String()) {
		t.Errorf("error %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("the demo started:\n%s", out.String())
	}
}

// A database labelled with another environment is refused, untouched.
func TestRefusesAnotherWarehouse(t *testing.T) {
	db := pgtest.New(t) // labelled environment "test"
	var out bytes.Buffer
	err := demo.Run(context.Background(), demo.Options{Out: t.TempDir(), DSN: db.DSN.Reveal(), Nights: 1}, hooksThatMustNotRun(t, &out))
	if err == nil || !strings.Contains(err.Error(), `the warehouse of environment "test", not a demo warehouse`) ||
		!strings.Contains(err.Error(), "MIM_DEMO_DATABASE_URL") {
		t.Errorf("error %v", err)
	}
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ctl.settings`).Scan(&n); err != nil || n == 0 {
		t.Errorf("the warehouse was touched: %d settings (%v)", n, err)
	}
}

// The demo's configuration parses, names the sites and keeps the DSN and
// tokens out of its text.
func TestConfig(t *testing.T) {
	sites := []demo.Site{{Name: "main", URL: "http://127.0.0.1:1", Token: strings.Repeat("a1", 16)},
		{Name: "archive", URL: "http://127.0.0.1:2", Token: strings.Repeat("b2", 16), DB: "postgres://mim:mim@h/db?search_path=moodle_archive"}}
	dsn := "postgres://mim:s3cret@127.0.0.1:5432/mim_demo"
	text, secrets := demo.ConfigText(dsn, "/tmp/out", 2026, sites)
	if m := regexp.MustCompile(`s3cret|a1a1a1|b2b2b2|mim:mim@`).FindString(text); m != "" {
		t.Errorf("the configuration's text holds a secret (%s):\n%s", m, text)
	}
	if len(secrets) < 3 {
		t.Errorf("secrets %d, want the DSN and a token per site at least", len(secrets))
	}
	cfg, err := demo.Config(dsn, "/tmp/out", 2026, sites)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Environment != demo.Environment || len(cfg.Moodle) != 2 || cfg.Moodle[0].Name != "main" || cfg.Moodle[1].Kind != config.KindMoodleDB {
		t.Errorf("configuration %+v", cfg)
	}
}

func TestCurrentAcademicYear(t *testing.T) {
	for _, c := range []struct {
		t    time.Time
		want int
	}{
		{time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC), 2026},
		{time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), 2026},
		{time.Date(2027, 7, 31, 23, 0, 0, 0, time.UTC), 2026},
		{time.Date(2027, 8, 1, 0, 0, 0, 0, time.UTC), 2027},
	} {
		if got := demo.CurrentAcademicYear(c.t); got != c.want {
			t.Errorf("%s: %d, want %d", c.t.Format(time.DateOnly), got, c.want)
		}
	}
}
