package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/export/flatfile"
	"github.com/mimwarehouse/mim/export/merge"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/night"
	"github.com/mimwarehouse/mim/internal/observe"
	"github.com/mimwarehouse/mim/internal/pipeline"
	"github.com/mimwarehouse/mim/internal/progress"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/load"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// DemoDSN is the database `mim demo` uses unless MIM_DEMO_DATABASE_URL says otherwise.
const DemoDSN = "postgres://mim:mim@127.0.0.1:5432/mim_demo?sslmode=disable"

// DemoEnvironment labels the demo warehouse and its simulated sites.
const DemoEnvironment = "demo"

var demoCommand = Command{
	Name:     "demo",
	Group:    "Operations",
	Summary:  "run MIM end to end on a synthetic university and simulated Moodle sites (no configuration needed)",
	Usage:    "mim demo [--scale small|medium|ucl] [--nights N] [--moodle-db] [--serve] [--listen ADDR] [--out DIR]",
	NoConfig: true,
	Help: `Builds a synthetic university and runs MIM on it, on this machine only:

  1. resets the demo warehouse: the database mim_demo on the local PostgreSQL
     that ./scripts/setup creates (MIM_DEMO_DATABASE_URL names another), and
     migrates it, labelled environment "demo". A database labelled with any
     other environment is refused, never reset;
  2. writes the SITS and CMIS views of a synthetic institution into it
     (schemas sismgr, moodlemgr; see mim synth) with its course mappings;
  3. starts its Moodle sites (two at scale small, three medium, four ucl) as
     simulators on loopback, each with its own token;
  4. runs mim run: every source extracted at once, the marts built, the IMS
     Enterprise file, profile CSV, tutor table and merge list written to
     --out (and the first site's OneRoster 1.2 CSV), timetable groups
     synced into the simulated sites, all guarded;
  5. lets each site's IMS Enterprise task apply its file, and its
     tool_mergeusers (with MIM's gathering) the merge list, as Moodle's cron
     would at night, then (with --nights 2 or more) runs again: the drift
     falls, the second night sends only what changed, proposes no merge
     again and moves the merged students' codes to the kept accounts. It
     also exports the first site's target as a flat-file site would get it
     (enrol_flatfile lines, out/flatfile/);
  6. prints what was produced: the files, the counts, the drift per site
     against what the synthetic data planted, the guard decisions, and where
     the status page is.

--moodle-db reads the sites from their databases instead (kind moodle-db):
before each night every site's tables are copied, as a replica would hold
them, into the schema moodle_<site> of the demo database, and MIM reads
them there; writes (group sync) still go to the sites' web services.

--serve keeps the status page, /metrics and the simulated sites up until
Ctrl-C. Running the demo again starts from scratch.`,
	Setup: func(fs *flag.FlagSet) Runner {
		scale := fs.String("scale", "small", "`size` of the university: small, medium or ucl")
		nights := fs.Int("nights", 1, "how many nightly runs (`N`); Moodle applies the IMS file after each")
		serve := fs.Bool("serve", false, "keep the status page and the simulated sites up until Ctrl-C")
		listen := fs.String("listen", "127.0.0.1:9464", "status page `ADDR` with --serve (port 0: any free port)")
		out := fs.String("out", filepath.Join("out", "demo"), "`DIR` the feeds are written to")
		seed := fs.Uint64("seed", 1, "random `seed` of the synthetic university")
		latency := fs.Duration("latency", 0, "answer every web-service call after `D` (e.g. 20ms, as a real site)")
		year := fs.Int("year", 0, "academic start `YEAR` of the synthetic university (default: the current one, switching in August)")
		moodleDB := fs.Bool("moodle-db", false, "read the Moodle sites from their databases (a copy in the demo database), not their web services")
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) != 0 {
				return Usagef("demo takes no arguments (did you mean --scale %s?)", args[0])
			}
			sc, err := synth.ParseScale(*scale)
			if err != nil {
				return Usagef("--scale: %v", err)
			}
			if *nights < 1 || *nights > 7 {
				return Usagef("--nights must be between 1 and 7")
			}
			if _, _, err := net.SplitHostPort(*listen); err != nil {
				return Usagef("--listen %q is not host:port", *listen)
			}
			return RunDemo(ctx, e, DemoOptions{Scale: sc, Nights: *nights, Serve: *serve, Listen: *listen, Out: *out,
				Seed: *seed, Latency: *latency, Year: *year, MoodleDB: *moodleDB})
		}
	},
}

// DemoOptions choose what `mim demo` does.
type DemoOptions struct {
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
	// DSN overrides MIM_DEMO_DATABASE_URL and DemoDSN (tests).
	DSN string
	// Ready, if set, is told the status page's URL once it serves (tests).
	Ready func(url string)
}

func demoDSN(o DemoOptions) string {
	switch {
	case o.DSN != "":
		return o.DSN
	case os.Getenv("MIM_DEMO_DATABASE_URL") != "":
		return os.Getenv("MIM_DEMO_DATABASE_URL")
	}
	return DemoDSN
}

// DemoSite is one simulated Moodle site the demo configures.
type DemoSite struct {
	Name, URL, Token string
	// DB, when set, is a PostgreSQL DSN of the site's tables: the site is
	// read from there (kind moodle-db).
	DB string
}

// DemoConfig is the configuration `mim demo` runs with: the synthetic SITS
// and CMIS in the demo database, the simulated sites, feeds written to out.
// It goes through config.Parse like any file, so it is checked the same way;
// the DSN and the tokens come in as variables and are never part of the text.
func DemoConfig(dsn, out string, minYear int, sites []DemoSite) (*config.Config, error) {
	text, secrets := DemoConfigText(dsn, out, minYear, sites)
	return config.Parse([]byte(text), func(k string) (string, bool) { v, ok := secrets[k]; return v, ok })
}

// DemoConfigText is the demo's configuration as a file's text, and the
// values of the ${NAME}s it refers to (the DSN and each site's token); the
// first site also gets its target as OneRoster 1.2 CSV.
func DemoConfigText(dsn, out string, minYear int, sites []DemoSite) (text string, secrets map[string]string) {
	ws := make([]synth.WorldSite, len(sites))
	for i, s := range sites {
		ws[i] = synth.WorldSite{Name: s.Name, URL: s.URL, Token: s.Token, DB: s.DB, OneRoster: i == 0}
	}
	return synth.ConfigText(synth.ConfigOptions{Environment: DemoEnvironment, DSN: dsn, Out: out, MinYear: minYear, Sites: ws,
		VarPrefix: "MIM_DEMO"})
}

// Names of the files the demo writes its configuration to, in --out.
const (
	DemoConfigFile  = "mim.yaml"
	DemoSecretsFile = "mim.secrets"
)

// writeDemoConfig writes the demo's configuration into out, so that every
// other command can be tried on the demo's warehouse: mim.yaml, which reads
// the DSN and the tokens from mim.secrets beside it (owner only) unless the
// environment sets them.
func writeDemoConfig(out, text string, secrets map[string]string) error {
	var sb strings.Builder
	sb.WriteString("# The demo warehouse's DSN and the simulated sites' tokens, for mim.yaml.\n")
	names := make([]string, 0, len(secrets))
	for k := range secrets {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&sb, "%s=%s\n", k, secrets[k])
	}
	head := "# Written by mim demo: the configuration the demo ran with. Try the other\n" +
		"# commands on the demo warehouse with --config " + filepath.Join(out, DemoConfigFile) + ".\n" +
		"# The simulated Moodle sites live only as long as the demo (mim demo --serve).\n" +
		"secrets_file: " + DemoSecretsFile + "\n"
	for _, f := range []struct {
		name, body string
		mode       os.FileMode
	}{{DemoSecretsFile, sb.String(), 0o600}, {DemoConfigFile, head + text, 0o644}} {
		if err := writeFileAtomic(filepath.Join(out, f.name), []byte(f.body), f.mode); err != nil {
			return fmt.Errorf("writing the demo's configuration: %w", err)
		}
	}
	return nil
}

// writeFileAtomic writes a whole file under a temporary name, then renames it.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// demoNext prints the commands to try next on the demo's configuration.
func demoNext(w io.Writer, out string, serving bool) {
	cfg := filepath.Join(out, DemoConfigFile)
	mim := "mim"
	if exe := os.Args[0]; strings.Contains(exe, "go-build") {
		mim = "go run ./cmd/mim"
	}
	fmt.Fprintf(w, "\nthe demo's configuration is %s (its DSN and tokens in %s beside it); try next:\n", cfg, DemoSecretsFile)
	for _, c := range [][2]string{
		{"status", "the runs, by stage (--steps: every step)"},
		{"export --dry-run", "what the feeds would send now, and what the guards say"},
		{"settings list", "thresholds, overrides, academic year"},
		{"mappings list", "the course mappings"},
		{"serve --no-schedule --listen 127.0.0.1:0", "the status page and /metrics on this warehouse"},
	} {
		fmt.Fprintf(w, "  %s --config %s %-42s # %s\n", mim, cfg, c[0], c[1])
	}
	if serving {
		fmt.Fprintf(w, "  %s --config %s %-42s # %s\n", mim, cfg, "run", "another night, while the simulated sites are up")
	} else {
		fmt.Fprintln(w, "the simulated Moodle sites stopped with the demo: with `mim demo --serve` they stay up, and `mim run` works too")
	}
}

// RunDemo runs the demo (see `mim help demo`), printing to e.Stdout.
func RunDemo(ctx context.Context, e *Env, o DemoOptions) error {
	w := e.Stdout
	// The demo says what happens on stdout; the log keeps to warnings.
	var logTo io.Writer = io.Discard
	if e.Stderr != nil {
		logTo = e.Stderr
	}
	e.Logger = slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dsn := demoDSN(o)
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return err
	}
	// --serve needs its port: find out now, not after the whole demo ran.
	var ln net.Listener
	if o.Serve {
		if ln, err = net.Listen("tcp", o.Listen); err != nil {
			return &UsageError{Msg: fmt.Sprintf("--serve cannot listen on %s: %v (another mim serve or demo? try --listen 127.0.0.1:0)", o.Listen, err)}
		}
		defer ln.Close()
	}
	started := time.Now()
	pool, err := warehouse.Open(ctx, config.DSN(dsn), 12)
	if err != nil {
		return fmt.Errorf("%w\n(the demo needs the local PostgreSQL: run ./scripts/setup, or set MIM_DEMO_DATABASE_URL)", err)
	}
	defer pool.Close()
	fmt.Fprintf(w, "== mim demo: scale %s, warehouse %s\n", o.Scale, config.RedactDSN(dsn))

	fmt.Fprintln(w, "\n== 1. resetting and migrating the demo warehouse")
	if err := resetDemo(ctx, pool); err != nil {
		return err
	}
	if _, err := warehouse.Migrate(ctx, pool, nil); err != nil {
		return err
	}
	if _, _, err := warehouse.EnsureDeployment(ctx, pool, DemoEnvironment, "mim demo"); err != nil {
		return err
	}
	if err := os.RemoveAll(out); err != nil {
		return fmt.Errorf("clearing %s: %w", out, err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", out, err)
	}

	fmt.Fprintln(w, "\n== 2. writing a synthetic university's SITS and CMIS")
	if o.Year == 0 {
		o.Year = CurrentAcademicYear(time.Now())
	}
	in, err := synth.Generate(synth.Options{Scale: o.Scale, Seed: o.Seed, Year: o.Year})
	if err != nil {
		return err
	}
	var rows int64
	tables, err := in.Write(ctx, pool, "", nil)
	if err != nil {
		return err
	}
	for _, t := range tables {
		rows += t.Rows
	}
	m := in.Manifest
	fmt.Fprintf(w, "%s rows in %s tables: %s students (%s active), %s module registrations, %s CMIS groups\n",
		progress.Count(rows), progress.Count(int64(len(tables))), progress.Count(int64(m.Students)), progress.Count(int64(m.ActiveStudents)),
		progress.Count(int64(m.Registrations)), progress.Count(int64(m.CMISGroups)))
	mres, err := synth.InsertMappings(ctx, pool, in.Mappings, "mim demo")
	if err != nil {
		return err
	}
	fmt.Fprintln(w, progress.Counted(int64(mres.Created+mres.Updated+mres.Unchanged), "course mapping", "course mappings"))

	fmt.Fprintln(w, "\n== 3. starting the simulated Moodle sites")
	var demoSites []DemoSite
	sims := map[string]*moodletest.Site{}
	defer func() {
		for _, s := range sims {
			_ = s.Close()
		}
	}()
	for _, s := range in.Sites {
		tok := randomToken()
		site, err := moodletest.New(*s.State, moodletest.WithToken(tok), moodletest.WithLatency(o.Latency), moodletest.WithDebug(false))
		if err != nil {
			return fmt.Errorf("building the simulated site %s: %w", s.Name, err)
		}
		if err := site.Start(); err != nil {
			return fmt.Errorf("starting the simulated site %s: %w", s.Name, err)
		}
		sims[s.Name] = site
		ds := DemoSite{Name: s.Name, URL: site.URL(), Token: tok}
		if o.MoodleDB {
			ds.DB = withSearchPath(dsn, demoMoodleSchema(s.Name))
		}
		demoSites = append(demoSites, ds)
		sm, _ := m.Site(s.Name)
		kind := ""
		if s.Archive {
			kind = " (archive: last year, mappings inactive)"
		}
		fmt.Fprintf(w, "%-10s %s  %s courses, %s users, %s enrolments%s\n", s.Name, site.URL(), progress.Count(int64(sm.Courses)),
			progress.Count(int64(sm.Users)), progress.Count(int64(sm.Enrolments)), kind)
	}

	cfgText, secrets := DemoConfigText(dsn, out, in.Year, demoSites)
	cfg, err := config.Parse([]byte(cfgText), func(k string) (string, bool) { v, ok := secrets[k]; return v, ok })
	if err != nil {
		return fmt.Errorf("the demo configuration: %w", err) // a programming error, said plainly
	}
	if err := writeDemoConfig(out, cfgText, secrets); err != nil {
		return err
	}
	e.SetConfig(cfg)
	e.pool = pool // the demo's own pool; Close leaves it to the defer above
	defer func() { e.pool = nil }()
	metrics := ServeMetrics(e, pool)

	var last *pipeline.Result
	var runErr error
	for night := 1; night <= o.Nights; night++ {
		if o.MoodleDB {
			fmt.Fprintf(w, "\n== 4. night %d: each site's tables copied into the demo database, as its replica holds them\n", night)
			if err := replicateDemoSites(ctx, pool, demoSites, sims); err != nil {
				return err
			}
		}
		fmt.Fprintf(w, "\n== 4. night %d: mim run\n", night)
		last, runErr = RunPipeline(ctx, e, RunOptions{Job: "mim demo", Progress: "off", Out: w})
		if last == nil {
			return runErr
		}
		fmt.Fprintf(w, "\n== 5. night %d: each site's IMS Enterprise task applies its file, tool_uploaduser its profile CSV and tool_mergeusers the merge list, as Moodle's cron would\n", night)
		applyIMS(w, cfg, out, in, sims)
		applyProfiles(w, out, in, sims)
		applyMerges(w, out, last.RunID, in, sims)
		if ctx.Err() != nil {
			break
		}
	}

	if last.Status() != "failed" {
		fmt.Fprintln(w, "\n== 5b. the same target for a flat-file site: mim export --full --feed flatfile, as a site with enrolment_feed: flatfile gets it")
		if err := demoFlatfile(ctx, e, cfg, pool, out, in); err != nil {
			fmt.Fprintf(w, "the flat-file export failed: %v\n", err)
		}
	}

	fmt.Fprintln(w, "\n== 6. what was produced")
	if err := demoReport(ctx, w, pool, out, in, last); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ndemo finished in %s: run %d %s\n", time.Since(started).Round(time.Millisecond), last.RunID, last.Status())
	demoNext(w, o.Out, o.Serve)
	if !o.Serve {
		fmt.Fprintf(w, "status page: run `mim demo --serve` and open http://%s/\n", o.Listen)
		return runErr
	}
	return serveDemo(ctx, e, cfg, pool, metrics, ln, o, sims, runErr)
}

// demoMoodleSchema is the schema holding a demo site's Moodle tables.
func demoMoodleSchema(site string) string { return "moodle_" + strings.ReplaceAll(site, "-", "_") }

// withSearchPath points a PostgreSQL DSN at schema.
func withSearchPath(dsn, schema string) string {
	if strings.Contains(dsn, "://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return dsn + sep + "search_path=" + schema
	}
	return dsn + " search_path=" + schema
}

// replicateDemoSites writes each site's current content into its schema of
// the demo database, replacing what was there, as a replica would hold it.
func replicateDemoSites(ctx context.Context, pool *pgxpool.Pool, sites []DemoSite, sims map[string]*moodletest.Site) error {
	for _, s := range sites {
		schema := pgx.Identifier{demoMoodleSchema(s.Name)}.Sanitize()
		if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE; CREATE SCHEMA "+schema); err != nil {
			return fmt.Errorf("preparing the tables of %s: %w", s.Name, err)
		}
		// The site's read is read-only; its copy is written through a
		// connection of its own.
		db, err := sql.Open("pgx", s.DB)
		if err != nil {
			return err
		}
		err = sims[s.Name].WriteTables(ctx, db, moodletest.Postgres, moodletest.TableOptions{})
		db.Close()
		if err != nil {
			return fmt.Errorf("writing the tables of %s: %w", s.Name, err)
		}
	}
	return nil
}

// demoFlatfile shows the flat-file feed on the demo's first site: the
// configuration says the site takes its enrolments by flat file, and a full
// export re-asserts the whole target (the IMS file already told the site
// the same, so nothing it says is new) into out/flatfile/, checked as
// enrol_flatfile reads it.
func demoFlatfile(ctx context.Context, e *Env, cfg *config.Config, pool *pgxpool.Pool, out string, in *synth.Institution) error {
	w := e.Stdout
	if len(in.Sites) == 0 {
		return nil
	}
	c := *cfg
	c.Moodle = slices.Clone(cfg.Moodle)
	c.Exports.Dir = filepath.Join(out, "flatfile")
	site := &c.Moodle[0]
	site.EnrolmentFeed, site.Timezone = config.EnrolmentFlatfile, "Europe/London"
	run, err := ledger.Begin(ctx, pool, "export", c.Environment, VersionString(), []string{"demo", "export", "--full", "--feed", "flatfile"})
	if err != nil {
		return err
	}
	x := feeds.New(pool, wire.Feeds(&c), feeds.WithOperator("mim demo"))
	sum, err := x.Run(ctx, run, feeds.Options{Full: true, Instances: []string{site.Name}, Feeds: []feeds.Feed{feeds.Flatfile}})
	_ = run.Finish(ctx, night.ExportOutcome(sum, err), ExitCode(err), err)
	if err != nil {
		return err
	}
	for _, r := range sum.Results {
		if r.Err != nil {
			return r.Err
		}
		data, err := os.ReadFile(filepath.Join(c.Exports.Dir, feeds.FlatfileName(site.Name)))
		if err != nil {
			return err
		}
		st, err := flatfile.Validate(bytes.NewReader(data))
		if err != nil {
			return err
		}
		first, _, _ := strings.Cut(string(data), "\n")
		fmt.Fprintf(w, "%-10s %s: %d add lines, %d del lines, checked as enrol_flatfile reads them (first: %s)\n",
			site.Name, filepath.Join("flatfile", feeds.FlatfileName(site.Name)), st.Adds, st.Dels, first)
	}
	return nil
}

// resetDemo empties the demo warehouse: every schema the migrations create.
// It refuses a database labelled with another environment.
func resetDemo(ctx context.Context, pool *pgxpool.Pool) error {
	if err := warehouse.Reset(ctx, pool, DemoEnvironment); err != nil {
		return fmt.Errorf("%w (set MIM_DEMO_DATABASE_URL to another database)", err)
	}
	return nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// applyIMS runs each site's IMS Enterprise task on the file the export
// wrote, as Moodle's scheduled task would.
func applyIMS(w io.Writer, cfg *config.Config, out string, in *synth.Institution, sims map[string]*moodletest.Site) {
	for _, s := range in.Sites {
		site, _ := cfg.Site(s.Name)
		path := filepath.Join(out, feeds.IMSFileName(s.Name))
		if _, err := os.Stat(path); err != nil {
			fmt.Fprintf(w, "%-10s no IMS file (%s)\n", s.Name, filepath.Base(path))
			continue
		}
		cron := sims[s.Name].IMSCron(moodletest.IMSSettings{RestrictTarget: site.IMSTarget, Unenrol: true})
		rep, err := cron.Run(path)
		if err != nil {
			fmt.Fprintf(w, "%-10s the IMS task failed: %v\n", s.Name, err)
			continue
		}
		if rep.Skipped != "" {
			fmt.Fprintf(w, "%-10s %s\n", s.Name, rep.Skipped)
			continue
		}
		fmt.Fprintf(w, "%-10s enrolled %d, dates changed %d, unenrolled %d, suspended %d; unknown courses %d, unknown users %d\n",
			s.Name, rep.Enrolled, rep.DatesChanged, rep.Unenrolled, rep.Suspended, rep.UnknownCourses, rep.UnknownUsers)
	}
}

// applyProfiles runs each site's bulk user upload on the profile CSV the
// export wrote, as a site's cron job running tool_uploaduser would.
func applyProfiles(w io.Writer, out string, in *synth.Institution, sims map[string]*moodletest.Site) {
	for _, s := range in.Sites {
		f, err := os.Open(filepath.Join(out, feeds.ProfileFileName(s.Name)))
		if err != nil {
			continue // no profile CSV for this site
		}
		rep, err := sims[s.Name].UploadUsers(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(w, "%-10s the profile upload failed: %v\n", s.Name, err)
			continue
		}
		fmt.Fprintf(w, "%-10s profile values of %d accounts updated; %d usernames not on the site\n", s.Name, rep.Updated, rep.Skipped)
	}
}

// applyMerges runs each site's tool_mergeusers with MIM's gathering on the
// merge list the night's export wrote, as the site's cron job would
// (docs/moodle-side.md): the next night sees the merges done, proposes none
// again and moves the student codes to the kept accounts.
func applyMerges(w io.Writer, out string, runID int64, in *synth.Institution, sims map[string]*moodletest.Site) {
	for _, s := range in.Sites {
		f, err := os.Open(filepath.Join(out, merge.FileName(s.Name, runID)))
		if err != nil {
			continue // no merge list for this site tonight
		}
		rep, err := sims[s.Name].RunMergeList(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(w, "%-10s tool_mergeusers refused the merge list: %v\n", s.Name, err)
			continue
		}
		fmt.Fprintf(w, "%-10s tool_mergeusers merged %d pairs of the merge list, refused %d\n", s.Name, len(rep.Merged), len(rep.Refused))
	}
}

// demoReport prints the files, counts, drift and guard decisions.
func demoReport(ctx context.Context, w io.Writer, pool *pgxpool.Pool, out string, in *synth.Institution, res *pipeline.Result) error {
	fmt.Fprintf(w, "\nfiles in %s:\n", out)
	var files []string
	_ = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			continue
		}
		rel, _ := filepath.Rel(out, f)
		fmt.Fprintf(tw, "  %s\t%s bytes\n", rel, progress.Count(st.Size()))
	}
	tw.Flush()
	if len(files) == 0 {
		fmt.Fprintln(w, "  (none)")
	}

	fmt.Fprintln(w, "\nrecords in raw (source, instance: live records):")
	counts, err := load.LiveCounts(ctx, pool)
	if err != nil {
		return err
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, c := range counts {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t\n", c.Source, c.Instance, progress.Count(c.Live))
	}
	tw.Flush()

	fmt.Fprintln(w, "\nmarts (rows):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, mart := range []string{"dim_person", "dim_course", "fct_enrolment_target", "fct_enrolment_actual", "enrolment_drift",
		"exp_ims_membership", "exp_profile_fields", "exp_personal_tutor", "exp_merge_candidates", "exp_group_target", "exp_oneroster"} {
		var n int64
		err := pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{"mart", mart}.Sanitize()).Scan(&n)
		switch {
		case err != nil:
			fmt.Fprintf(tw, "  mart.%s\tnot built\n", mart)
		default:
			fmt.Fprintf(tw, "  mart.%s\t%s\n", mart, progress.Count(n))
		}
	}
	tw.Flush()

	if err := demoDrift(ctx, w, pool, in); err != nil {
		fmt.Fprintf(w, "\ndrift: %v\n", err)
	}

	fmt.Fprintln(w, "\nguard decisions of the last run:")
	guards, err := pipeline.GuardEvents(ctx, pool, res.RunID)
	if err != nil {
		return err
	}
	if len(guards) == 0 {
		fmt.Fprintln(w, "  none recorded")
	}
	for _, g := range guards {
		fmt.Fprintf(w, "  %s\n", g)
	}
	return nil
}

// demoDrift prints mart.enrolment_drift per site beside what the synthetic
// university planted (synth.Manifest: the counts the marts must reproduce).
func demoDrift(ctx context.Context, w io.Writer, pool *pgxpool.Pool, in *synth.Institution) error {
	rows, err := pool.Query(ctx, `SELECT instance, kind, count(*) FROM mart.enrolment_drift WHERE role = 'student' OR kind = 'extra' GROUP BY 1, 2`)
	if err != nil {
		return fmt.Errorf("reading mart.enrolment_drift: %w", err)
	}
	got := map[string]map[string]int64{}
	for rows.Next() {
		var inst, kind string
		var n int64
		if err := rows.Scan(&inst, &kind, &n); err != nil {
			rows.Close()
			return err
		}
		if got[inst] == nil {
			got[inst] = map[string]int64{}
		}
		got[inst][kind] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nenrolment drift as the last run found it (mart.enrolment_drift), beside what the synthetic data planted before night 1:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  site\tmissing\tplanted\tsuspended\tplanted\textra\tplanted\tunknown user\tplanted\t")
	for _, s := range in.Manifest.Sites {
		g := got[s.Site]
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", s.Site, g["missing"], s.DriftMissing, g["suspended"], s.DriftSuspended,
			g["extra"], s.DriftExtra, g["unknown_user"], s.UnknownUserRows)
	}
	return tw.Flush()
}

// serveDemo keeps the status page and the simulators up until Ctrl-C.
func serveDemo(ctx context.Context, e *Env, cfg *config.Config, pool *pgxpool.Pool, m *observe.Metrics, ln net.Listener, o DemoOptions,
	sims map[string]*moodletest.Site, runErr error) error {
	so := ServeOptions{Metrics: m}
	tool, lines, err := demoLTI(ctx, e, cfg, pool, sims, "http://"+ln.Addr().String())
	if err != nil {
		ln.Close()
		return fmt.Errorf("setting up the LTI tool of the demo: %w", err)
	}
	if tool != nil {
		so.LTI = tool
	}
	srv := &http.Server{Handler: ServeHandler(cfg, pool, so), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	url := "http://" + ln.Addr().String() + "/"
	for _, l := range lines {
		fmt.Fprintln(e.Stdout, l)
	}
	fmt.Fprintf(e.Stdout, "\nstatus page: %s  (metrics %smetrics, health %shealthz); the simulated sites stay up. Ctrl-C to stop.\n", url, url, url)
	if o.Ready != nil {
		o.Ready(url)
	}
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return runErr
}

// CurrentAcademicYear is the start year of the academic year that t falls
// in, switching on 1 August as UK universities' years do (2026 for
// November 2026 and for March 2027).
func CurrentAcademicYear(t time.Time) int {
	if t.Month() >= time.August {
		return t.Year()
	}
	return t.Year() - 1
}
