package bench

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", the replicas' writer

	"github.com/mimwarehouse/mim/extract"
	moodlex "github.com/mimwarehouse/mim/extract/moodle"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/progress"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/load"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// kindName says how a kind of read reaches the sites, for the table.
func kindName(kind string) string {
	if kind == KindDB {
		return "database"
	}
	return "web services"
}

// replicaSchema is the schema of the scratch database holding a site's
// Moodle tables, as its read-only replica would.
func replicaSchema(site string) string { return "moodle_" + strings.ReplaceAll(site, "-", "_") }

// replicaDSN points at a site's tables: the scratch database, its schema.
func (b *bench) replicaDSN(site string) string {
	dsn := b.db.dsn.Reveal()
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + replicaSchema(site)
}

// replicate writes each site's current content into its schema, replacing
// what was there, and gathers the tables' statistics, as a replica of a
// live site holds them: what the next read from the database sees. It is
// set-up, not timed with the night.
func (b *bench) replicate(ctx context.Context) error {
	start := time.Now()
	for _, s := range b.sites {
		schema := pgx.Identifier{replicaSchema(s.name)}.Sanitize()
		if _, err := b.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE; CREATE SCHEMA "+schema); err != nil {
			return fmt.Errorf("preparing the tables of site %s: %w", s.name, err)
		}
		db, err := sql.Open("pgx", b.replicaDSN(s.name))
		if err != nil {
			return err
		}
		err = s.site.WriteTables(ctx, db, moodletest.Postgres, moodletest.TableOptions{})
		if err == nil {
			_, err = db.ExecContext(ctx, "ANALYZE")
		}
		db.Close()
		if err != nil {
			return fmt.Errorf("writing the tables of site %s: %w", s.name, err)
		}
	}
	b.logf("the sites' tables copied into their schemas (as their replicas hold them) in %s", secs(time.Since(start)))
	return nil
}

// extractKinds reads the first site alone with `mim extract`, as a first
// load, by each kind of read: over its web services (requests/s against
// concurrency ÷ latency), then from its database (against the web
// services, and the target of a few seconds).
func (b *bench) extractKinds(ctx context.Context) error {
	kind := b.kind
	defer func() { b.kind = kind }()
	var ws time.Duration
	for _, k := range b.o.Kinds {
		b.kind = k
		if k == KindWS {
			r, err := b.extract(ctx)
			if err != nil || r == nil {
				return err
			}
			ws = r.Wall
			continue
		}
		if err := b.extractDB(ctx, ws); err != nil {
			return err
		}
	}
	return nil
}

// extractDB reads the first site alone from its database, a first load.
func (b *bench) extractDB(ctx context.Context, ws time.Duration) error {
	if len(b.sites) == 0 {
		return nil
	}
	s := b.sites[0]
	if err := b.replicate(ctx); err != nil {
		return err
	}
	if err := load.Empty(ctx, b.pool); err != nil {
		return fmt.Errorf("emptying raw before the site's read from its database: %w", err)
	}
	b.logf("extract: site %s alone from its database", s.name)
	before := s.site.Calls("")
	r, err := b.mim(ctx, "extract", "--source", "moodle:"+s.name, "--progress", "off")
	if err != nil {
		return fmt.Errorf("bench stage extract: %w", err)
	}
	b.child("mim extract --source moodle:"+s.name+" (database)", r)
	cost, err := b.readCost(ctx, s)
	if err != nil {
		return err
	}
	f := Figure{Stage: StageExtract, What: fmt.Sprintf("site %s alone from its database (first load), %d queries, %s web-service requests",
		s.name, cost.queries, progress.Count(int64(s.site.Calls("")-before))), Measured: secs(r.Wall), Note: noteOf(exitStatus(r.Exit), r)}
	if ws > 0 {
		f.Reference, f.Ratio, f.Unit = "web services "+secs(ws), r.Wall.Seconds()/ws.Seconds(), "× web services"
	}
	if b.o.Scale == synth.UCL {
		f.Target, f.Met = fmt.Sprintf("≤ %d s", targetDBRead), met(r.Wall.Seconds() <= targetDBRead)
	}
	b.add(f)
	return nil
}

func exitStatus(code int) string {
	if code == 0 {
		return "succeeded"
	}
	return fmt.Sprintf("exit %d", code)
}

// readCost is what one read of a site from its database costs it.
type readCost struct {
	queries int64
	records int64
	took    time.Duration
}

// readCost reads site s from its tables in this process, the records
// counted and dropped: how many queries the read takes (a child's read
// cannot say), and the read alone, without landing.
func (b *bench) readCost(ctx context.Context, s *simSite) (readCost, error) {
	site := &config.MoodleSite{Name: s.name, URL: s.site.URL(), Environment: Environment, Kind: config.KindMoodleDB,
		Entities: append([]string(nil), config.DefaultMoodleEntities...),
		Database: &config.MoodleDatabase{Driver: "pgx", DSN: config.DSN(b.replicaDSN(s.name)), Prefix: config.DefaultMoodleDBPrefix,
			MaxLag: time.Hour, Timeout: 10 * time.Minute}}
	src, err := moodlex.NewDB(wire.MoodleSite(site), extract.Options{})
	if err != nil {
		return readCost{}, err
	}
	sink := &countingSink{}
	start := time.Now()
	if err := src.Extract(ctx, sink); err != nil {
		return readCost{}, fmt.Errorf("reading site %s from its tables: %w", s.name, err)
	}
	return readCost{queries: src.Queries(), records: sink.records, took: time.Since(start)}, nil
}

// countingSink counts the records of a read and drops them.
type countingSink struct {
	mu      sync.Mutex
	records int64
}

func (c *countingSink) Entity(context.Context, extract.EntityID) (extract.EntityWriter, error) {
	return &countingWriter{sink: c}, nil
}

// countingWriter is one entity of a countingSink.
type countingWriter struct {
	sink *countingSink
	n    int64
}

func (w *countingWriter) Write(context.Context, extract.Record) error { w.n++; return nil }
func (w *countingWriter) ScopeComplete(string)                        {}
func (w *countingWriter) ScopeFailed(string, error)                   {}
func (w *countingWriter) RowError(string, error)                      {}
func (w *countingWriter) Abort()                                      {}

// Commit adds the entity's records to the sink's count; entities commit
// one at a time per site read, but may from several goroutines.
func (w *countingWriter) Commit(context.Context) (extract.Result, error) {
	w.sink.mu.Lock()
	w.sink.records += w.n
	w.sink.mu.Unlock()
	return extract.Result{In: w.n}, nil
}

// siteReads is what reading one site cost, by kind of read and night.
type siteReads struct {
	name     string
	requests [2]int                      // web-service requests of the extract task, by night
	took     map[string][2]time.Duration // the extract task's time, by kind and night
	cost     readCost                    // one read from its database, in the bench's process
}

func (b *bench) siteRead(name string) *siteReads {
	r := b.reads[name]
	if r == nil {
		r = &siteReads{name: name, took: map[string][2]time.Duration{}}
		b.reads[name] = r
	}
	return r
}

// night keeps a night's extract task of the site.
func (r *siteReads) night(kind string, n, requests int, took time.Duration) {
	t := r.took[kind]
	t[n-1] = took
	r.took[kind] = t
	if kind == KindWS {
		r.requests[n-1] = requests
	}
}

// readFigures adds a figure per site: what reading it cost by each kind,
// requests beside queries, and the read's time within the first night.
func (b *bench) readFigures() {
	ctx := context.Background()
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "site\tweb services: requests\tread+landed, night 1\tnight 2\tdatabase: queries\trecords\tread alone\tread+landed, night 1\tnight 2\t")
	for _, s := range b.sites {
		r := b.reads[s.name]
		if r == nil {
			continue
		}
		if _, ok := r.took[KindDB]; ok && b.kind == KindDB {
			cost, err := b.readCost(ctx, s)
			if err != nil {
				b.logf("%v", err)
			}
			r.cost = cost
		}
		ws, db := r.took[KindWS], r.took[KindDB]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", s.name, progress.Count(int64(r.requests[0])), secsOr(ws[0]), secsOr(ws[1]),
			r.cost.queries, progress.Count(r.cost.records), secsOr(r.cost.took), secsOr(db[0]), secsOr(db[1]))
		f := Figure{Stage: StageRun, What: fmt.Sprintf("site %s's Moodle read in the first night", s.name)}
		switch {
		case db[0] > 0:
			f.Measured = fmt.Sprintf("%d queries, %s", r.cost.queries, secs(db[0]))
		case ws[0] > 0:
			f.Measured = fmt.Sprintf("%s requests, %s", progress.Count(int64(r.requests[0])), secs(ws[0]))
		}
		if db[0] > 0 && ws[0] > 0 {
			f.Reference = fmt.Sprintf("%s requests, %s", progress.Count(int64(r.requests[0])), secs(ws[0]))
			f.Ratio, f.Unit = db[0].Seconds()/ws[0].Seconds(), "× web services"
		}
		if db[0] > 0 && s == b.sites[0] && b.o.Scale == synth.UCL {
			f.Target, f.Met = fmt.Sprintf("≤ %d s", targetDBRead), met(db[0].Seconds() <= targetDBRead)
		}
		if f.Measured != "" {
			b.add(f)
		}
	}
	tw.Flush()
	b.section("moodle reads by site: web-service requests (counted by the simulated site) and database queries (one read of its tables in the bench's process, records dropped), and the extract task of each night (read and landed, beside the other sources)", sb.String())
}

func secsOr(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return secs(d)
}

// fastestFirstNight is the quickest first night measured, and its kind.
func (b *bench) fastestFirstNight() (string, time.Duration) {
	var kind string
	var best time.Duration
	for _, k := range b.o.Kinds {
		if d := b.nights[k][0]; d > 0 && (best == 0 || d < best) {
			kind, best = k, d
		}
	}
	return kind, best
}

// intraday runs the intra-day cycle once after the nights: SITS, CMIS, the
// transform and the IMS delta, no Moodle read (`mim run --cycle intraday`).
func (b *bench) intraday(ctx context.Context) error {
	b.logf("intraday: mim run --cycle intraday")
	r, err := b.mim(ctx, "run", "--cycle", "intraday", "--progress", "off", "--no-mail")
	what := "mim run --cycle intraday (SITS, CMIS, transform, IMS delta; no Moodle read)"
	if err != nil {
		if r != nil && r.Exit == 2 {
			// A usage error: this mim has no intra-day cycle to measure.
			b.add(Figure{Stage: StageIntraday, What: what, Measured: "not measured", Note: "this mim has no --cycle intraday: " + strings.TrimSpace(tail(r.Output, 1))})
			return nil
		}
		return fmt.Errorf("bench stage intraday: %w", err)
	}
	// The cycle's ledger run is command "intraday" (or "run" where the
	// cycle is recorded as a run of its own kind).
	runID, status, err := lastRun(ctx, b.pool, "intraday")
	if err != nil {
		runID, status, err = lastRun(ctx, b.pool, "run")
	}
	if err != nil {
		return err
	}
	b.child("mim run --cycle intraday", r)
	b.rss = max(b.rss, r.PeakRSS)
	f := Figure{Stage: StageIntraday, What: what, Measured: secs(r.Wall), Note: noteOf(status, r)}
	if ref := b.nights[b.kind][1]; ref > 0 {
		f.Reference, f.Ratio, f.Unit = fmt.Sprintf("second night (read by %s) %s", kindName(b.kind), secs(ref)), r.Wall.Seconds()/ref.Seconds(), "× night"
	}
	if b.o.Scale == synth.UCL {
		f.Target, f.Met = fmt.Sprintf("≤ %d s", targetIntraday), met(r.Wall.Seconds() <= targetIntraday)
	}
	b.add(f)
	return b.taskSection("intraday: mim run --cycle intraday, by task", 0, r, runID, status)
}

// stageSeconds is the wall time of each stage of a run, from the ledger:
// first step's start to last step's end ("extract 12.3s, transform 31.0s").
func stageSeconds(ctx context.Context, q warehouse.Querier, runID int64) (string, error) {
	steps, err := ledger.Steps(ctx, q, runID)
	if err != nil {
		return "", err
	}
	var parts []string
	for _, t := range ledger.ByStage(steps) {
		if t.Finished != nil {
			parts = append(parts, fmt.Sprintf("%s %s", t.Stage, secs(t.Finished.Sub(t.Started))))
		}
	}
	return strings.Join(parts, ", "), nil
}
