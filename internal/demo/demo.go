// Package demo is `mim demo`: it builds a synthetic university (SITS and
// CMIS views in the demo warehouse, simulated Moodle sites on loopback),
// runs MIM's nights on it, lets each site apply what the feeds wrote as
// Moodle's cron would, and reports what was produced beside what the
// synthetic data planted. The night itself, the daemon's handler and the
// course staff's tool come from the commands (Hooks), so the demo runs
// exactly what an operator runs.
package demo

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/lti"
	"github.com/mimwarehouse/mim/internal/pipeline"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// DefaultDSN is the database the demo uses unless MIM_DEMO_DATABASE_URL
// (or Options.DSN) says otherwise.
const DefaultDSN = "postgres://mim:mim@127.0.0.1:5432/mim_demo?sslmode=disable"

// Environment labels the demo warehouse and its simulated sites.
const Environment = "demo"

// Options choose what the demo does.
type Options struct {
	Scale   synth.Scale
	Nights  int
	Serve   bool
	Listen  string
	Out     string
	Seed    uint64
	Latency time.Duration
	// Year is the synthetic university's academic start year; 0 means the
	// current one (CurrentAcademicYear), so the demo's term dates are real.
	Year int
	// MoodleDB reads the sites from copies of their tables (kind moodle-db).
	MoodleDB bool
	// DSN overrides MIM_DEMO_DATABASE_URL and DefaultDSN (tests).
	DSN string
	// Ready, if set, is told the status page's URL once it serves (tests).
	Ready func(url string)
}

// Hooks are what the demo takes from the commands, so that it runs what an
// operator runs. Start is called once the demo's configuration and
// warehouse exist, before the first night; the others after it.
type Hooks struct {
	// Out receives what the demo says.
	Out io.Writer
	// Start adopts the demo's configuration and warehouse.
	Start func(cfg *config.Config, pool *pgxpool.Pool)
	// Night is one `mim run`, its summary printed to w.
	Night func(ctx context.Context, w io.Writer) (*pipeline.Result, error)
	// Export runs the export under a ledger run of its own, recorded with
	// args.
	Export func(ctx context.Context, cfg *config.Config, pool *pgxpool.Pool, args []string, o feeds.Options) (*feeds.Summary, error)
	// Handler is what `mim serve` serves on the demo's warehouse, with the
	// course staff's tool under /lti/ when tool is not nil.
	Handler func(tool http.Handler) http.Handler
	// LTITool builds the course staff's tool for cfg.
	LTITool func(cfg *config.Config, pool *pgxpool.Pool, o lti.Options) (*lti.Tool, error)
}

// ListenError says --serve cannot listen on its address: a usage error
// (exit 2), found before the demo starts.
type ListenError struct {
	Addr string
	Err  error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("--serve cannot listen on %s: %v (another mim serve or demo? try --listen 127.0.0.1:0)", e.Addr, e.Err)
}

// ExitCode is 2, a usage error's.
func (e *ListenError) ExitCode() int { return 2 }

func (e *ListenError) Unwrap() error { return e.Err }

// dsn is the demo database's DSN.
func (o Options) dsn() string {
	switch {
	case o.DSN != "":
		return o.DSN
	case os.Getenv("MIM_DEMO_DATABASE_URL") != "":
		return os.Getenv("MIM_DEMO_DATABASE_URL")
	}
	return DefaultDSN
}

// demo is one run of the demo.
type demo struct {
	o     Options
	h     Hooks
	w     io.Writer
	dsn   string
	out   string // o.Out, absolute
	pool  *pgxpool.Pool
	in    *synth.Institution
	sims  map[string]*moodletest.Site
	sites []Site
	cfg   *config.Config
}

// Run runs the demo (see `mim help demo`).
func Run(ctx context.Context, o Options, h Hooks) error {
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return err
	}
	d := &demo{o: o, h: h, w: h.Out, dsn: o.dsn(), out: out, sims: map[string]*moodletest.Site{}}
	// --serve needs its port: find out now, not after the whole demo ran.
	var ln net.Listener
	if o.Serve {
		if ln, err = net.Listen("tcp", o.Listen); err != nil {
			return &ListenError{Addr: o.Listen, Err: err}
		}
		defer ln.Close()
	}
	started := time.Now()
	d.pool, err = warehouse.Open(ctx, config.DSN(d.dsn), 12)
	if err != nil {
		return fmt.Errorf("%w\n(the demo needs the local PostgreSQL: run ./scripts/setup, or set MIM_DEMO_DATABASE_URL)", err)
	}
	defer d.pool.Close()
	defer d.stopSites()
	fmt.Fprintf(d.w, "== mim demo: scale %s, warehouse %s\n", o.Scale, config.RedactDSN(d.dsn))
	if err := d.build(ctx); err != nil {
		return err
	}
	last, runErr := d.nights(ctx)
	if last == nil {
		return runErr
	}
	if last.Status() != "failed" {
		fmt.Fprintln(d.w, "\n== 5b. the same target for a flat-file site: mim export --full --feed flatfile, as a site with enrolment_feed: flatfile gets it")
		if err := d.flatfile(ctx); err != nil {
			fmt.Fprintf(d.w, "the flat-file export failed: %v\n", err)
		}
	}
	fmt.Fprintln(d.w, "\n== 6. what was produced")
	if err := d.report(ctx, last); err != nil {
		return err
	}
	fmt.Fprintf(d.w, "\ndemo finished in %s: run %d %s\n", time.Since(started).Round(time.Millisecond), last.RunID, last.Status())
	printNext(d.w, o.Out, o.Serve)
	if !o.Serve {
		fmt.Fprintf(d.w, "status page: run `mim demo --serve` and open http://%s/\n", o.Listen)
		return runErr
	}
	return d.serve(ctx, ln, runErr)
}

// build readies the world: the warehouse reset and migrated, the
// synthetic university written, the simulated sites started, the
// configuration written and handed to the commands.
func (d *demo) build(ctx context.Context) error {
	fmt.Fprintln(d.w, "\n== 1. resetting and migrating the demo warehouse")
	if err := d.resetWarehouse(ctx); err != nil {
		return err
	}
	fmt.Fprintln(d.w, "\n== 2. writing a synthetic university's SITS and CMIS")
	if err := d.university(ctx); err != nil {
		return err
	}
	fmt.Fprintln(d.w, "\n== 3. starting the simulated Moodle sites")
	if err := d.startSites(); err != nil {
		return err
	}
	text, secrets := ConfigText(d.dsn, d.out, d.in.Year, d.sites)
	cfg, err := parse(text, secrets)
	if err != nil {
		return fmt.Errorf("the demo configuration: %w", err) // a programming error, said plainly
	}
	if err := writeConfig(d.out, text, secrets); err != nil {
		return err
	}
	d.cfg = cfg
	d.h.Start(cfg, d.pool)
	return nil
}

// nights runs the nights, each followed by the sites applying what it
// wrote. It returns the last night's result (nil if none finished) and
// its error.
func (d *demo) nights(ctx context.Context) (*pipeline.Result, error) {
	var last *pipeline.Result
	var runErr error
	for night := 1; night <= d.o.Nights; night++ {
		if d.o.MoodleDB {
			fmt.Fprintf(d.w, "\n== 4. night %d: each site's tables copied into the demo database, as its replica holds them\n", night)
			if err := d.replicateSites(ctx); err != nil {
				return nil, err
			}
		}
		fmt.Fprintf(d.w, "\n== 4. night %d: mim run\n", night)
		last, runErr = d.h.Night(ctx, d.w)
		if last == nil {
			return nil, runErr
		}
		fmt.Fprintf(d.w, "\n== 5. night %d: each site's IMS Enterprise task applies its file, tool_uploaduser its profile CSV and tool_mergeusers the merge list, as Moodle's cron would\n", night)
		d.applyIMS()
		d.applyProfiles()
		d.applyMerges(last.RunID)
		if ctx.Err() != nil {
			break
		}
	}
	return last, runErr
}
