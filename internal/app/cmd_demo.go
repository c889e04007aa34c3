package app

import (
	"context"
	"crypto/rand"
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
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/observe"
	"github.com/mimwarehouse/mim/internal/pipeline"
	"github.com/mimwarehouse/mim/internal/progress"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/moodle/moodletest"
	sqlfiles "github.com/mimwarehouse/mim/sql"
)

// DemoDSN is the database `mim demo` uses unless MIM_DEMO_DATABASE_URL says otherwise.
const DemoDSN = "postgres://mim:mim@127.0.0.1:5432/mim_demo?sslmode=disable"

// DemoEnvironment labels the demo warehouse and its simulated sites.
const DemoEnvironment = "demo"

func init() {
	Register(Command{
		Name:     "demo",
		Group:    "Operations",
		Summary:  "run MIM end to end on a synthetic university and simulated Moodle sites (no configuration needed)",
		Usage:    "mim demo [--scale small|medium|ucl] [--nights N] [--serve] [--listen ADDR] [--out DIR]",
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
     --out, timetable groups synced into the simulated sites, all guarded;
  5. lets each site's IMS Enterprise task apply its file, as Moodle's cron
     would at night, then (with --nights 2 or more) runs again: the drift
     falls and the second night sends only what changed;
  6. prints what was produced: the files, the counts, the drift per site
     against what the synthetic data planted, the guard decisions, and where
     the status page is.

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
					Seed: *seed, Latency: *latency, Year: *year})
			}
		},
	})
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
}

// DemoConfig is the configuration `mim demo` runs with: the synthetic SITS
// and CMIS in the demo database, the simulated sites, feeds written to out.
// It goes through config.Parse like any file, so it is checked the same way;
// the tokens come in as variables and are never part of the text.
func DemoConfig(dsn, out string, minYear int, sites []DemoSite) (*config.Config, error) {
	vars := map[string]string{"DSN": dsn}
	var b strings.Builder
	fmt.Fprintf(&b, "environment: %s\nwarehouse: {dsn: \"${DSN}\", max_conns: 12}\n", DemoEnvironment)
	sits, cmis := synth.Schemas("")
	fmt.Fprintf(&b, "sources:\n  sits: {driver: pgx, dsn: \"${DSN}\", schema: %s, min_year: %d}\n  cmis: {driver: pgx, dsn: \"${DSN}\", schema: %s}\n",
		sits, minYear, cmis)
	if len(sites) > 0 {
		b.WriteString("moodle:\n")
	}
	// The synthetic sites' profile fields, declared as a site's integration
	// team would: their accounts hold only upi values before MIM's first file.
	fields := synth.ProfileFieldNames()
	for i, s := range sites {
		tok := fmt.Sprintf("TOKEN_%d", i)
		vars[tok] = s.Token
		fmt.Fprintf(&b, "  - {name: %s, url: %q, token: \"${%s}\", environment: %s, rate_per_second: 500, concurrency: 8, group_prefix: %q, known_profile_fields: [%s]}\n",
			s.Name, s.URL, tok, DemoEnvironment, synth.GroupPrefix, strings.Join(fields, ", "))
	}
	fmt.Fprintf(&b, "exports:\n  dir: %q\n  profile_fields:\n", out)
	for _, f := range [][2]string{{"student_number", "studentno"}, {"programme_code", "progcode"}, {"programme_name", "programme"},
		{"ug_pg", "ugpg"}, {"year_level", "yearlevel"}, {"approved_modules", "approvedmodules"}, {"preapproval_modules", "preapprovalmodules"}} {
		fmt.Fprintf(&b, "    - {column: %s, shortname: %s}\n", f[0], f[1])
	}
	b.WriteString("log: {level: warn}\n")
	return config.Parse([]byte(b.String()), func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
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
	fmt.Fprintf(w, "%s rows in %d tables: %s students (%s active), %s module registrations, %s CMIS groups\n",
		progress.Count(rows), len(tables), progress.Count(int64(m.Students)), progress.Count(int64(m.ActiveStudents)),
		progress.Count(int64(m.Registrations)), progress.Count(int64(m.CMISGroups)))
	mres, err := synth.InsertMappings(ctx, pool, in.Mappings, "mim demo")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%d course mappings\n", mres.Created+mres.Updated+mres.Unchanged)

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
		demoSites = append(demoSites, DemoSite{Name: s.Name, URL: site.URL(), Token: tok})
		sm, _ := m.Site(s.Name)
		kind := ""
		if s.Archive {
			kind = " (archive: last year, mappings inactive)"
		}
		fmt.Fprintf(w, "%-10s %s  %s courses, %s users, %s enrolments%s\n", s.Name, site.URL(), progress.Count(int64(sm.Courses)),
			progress.Count(int64(sm.Users)), progress.Count(int64(sm.Enrolments)), kind)
	}

	cfg, err := DemoConfig(dsn, out, in.Year, demoSites)
	if err != nil {
		return fmt.Errorf("the demo configuration: %w", err) // a programming error, said plainly
	}
	e.SetConfig(cfg)
	e.pool = pool // the demo's own pool; Close leaves it to the defer above
	defer func() { e.pool = nil }()
	metrics := pipeline.NewMetrics(observe.NewMetrics())
	e.Metrics = metrics.Metrics

	var last *pipeline.Result
	var runErr error
	for night := 1; night <= o.Nights; night++ {
		fmt.Fprintf(w, "\n== 4. night %d: mim run\n", night)
		last, runErr = RunPipeline(ctx, e, RunOptions{Job: "mim demo", Progress: "off", Metrics: metrics, Out: w})
		if last == nil {
			return runErr
		}
		fmt.Fprintf(w, "\n== 5. night %d: each site's IMS Enterprise task applies its file, and tool_uploaduser its profile CSV, as Moodle's cron would\n", night)
		applyIMS(w, cfg, out, in, sims)
		applyProfiles(w, out, in, sims)
		if ctx.Err() != nil {
			break
		}
	}

	fmt.Fprintln(w, "\n== 6. what was produced")
	if err := demoReport(ctx, w, pool, out, in, last); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ndemo finished in %s: run %d %s\n", time.Since(started).Round(time.Millisecond), last.RunID, last.Status())
	if !o.Serve {
		fmt.Fprintf(w, "status page: run `mim demo --serve` and open http://%s/\n", o.Listen)
		return runErr
	}
	return serveDemo(ctx, e, cfg, pool, metrics, o, runErr)
}

// resetDemo empties the demo warehouse: every schema the migrations create.
// It refuses a database labelled with another environment.
func resetDemo(ctx context.Context, pool *pgxpool.Pool) error {
	var labelled bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('ctl.deployment') IS NOT NULL`).Scan(&labelled); err != nil {
		return fmt.Errorf("looking at the demo database: %w", err)
	}
	if labelled {
		d, err := warehouse.GetDeployment(ctx, pool)
		if err != nil {
			return err
		}
		if d != nil && d.Environment != DemoEnvironment {
			return fmt.Errorf("the database is the warehouse of environment %q, not a demo: mim demo resets only a demo warehouse (set MIM_DEMO_DATABASE_URL to another database)", d.Environment)
		}
	}
	schemas, err := migrationSchemas()
	if err != nil {
		return err
	}
	for _, s := range schemas {
		if _, err := pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{s}.Sanitize()+` CASCADE`); err != nil {
			return fmt.Errorf("resetting schema %s of the demo warehouse: %w", s, err)
		}
	}
	return nil
}

var createSchema = regexp.MustCompile(`(?i)CREATE\s+SCHEMA\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)`)

// migrationSchemas lists the schemas the migrations create.
func migrationSchemas() ([]string, error) {
	var out []string
	err := fs.WalkDir(sqlfiles.Migrations, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sqlfiles.Migrations, p)
		if err != nil {
			return err
		}
		up, _, _ := strings.Cut(string(b), "-- +goose Down")
		for _, m := range createSchema.FindAllStringSubmatch(up, -1) {
			if !slices.Contains(out, m[1]) {
				out = append(out, m[1])
			}
		}
		return nil
	})
	return out, err
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
	rows, err := pool.Query(ctx, `SELECT source, instance, count(*) FILTER (WHERE deleted_run IS NULL) FROM raw.record GROUP BY 1, 2 ORDER BY 1, 2`)
	if err != nil {
		return fmt.Errorf("counting raw records: %w", err)
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for rows.Next() {
		var src, inst string
		var n int64
		if err := rows.Scan(&src, &inst, &n); err != nil {
			rows.Close()
			return err
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t\n", src, inst, progress.Count(n))
	}
	rows.Close()
	tw.Flush()

	fmt.Fprintln(w, "\nmarts (rows):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, mart := range []string{"dim_person", "dim_course", "fct_enrolment_target", "fct_enrolment_actual", "enrolment_drift",
		"exp_ims_membership", "exp_profile_fields", "exp_personal_tutor", "exp_merge_candidates", "exp_group_target"} {
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
func serveDemo(ctx context.Context, e *Env, cfg *config.Config, pool *pgxpool.Pool, m *pipeline.Metrics, o DemoOptions, runErr error) error {
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s for the status page: %w (try --listen 127.0.0.1:0)", o.Listen, err)
	}
	srv := &http.Server{Handler: ServeHandler(cfg, pool, ServeOptions{Metrics: m}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	url := "http://" + ln.Addr().String() + "/"
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
