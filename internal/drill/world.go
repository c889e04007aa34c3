package drill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/export/guard"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/envguard"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// world is the drill world the drills copy: its scratch database (closed
// once built, so it can be copied), the institution, and each site as the
// good nights left it.
type world struct {
	o      Options
	log    io.Writer
	dsn    string
	name   string        // the scratch database's name
	admin  *pgxpool.Pool // the server's maintenance database: copies are made from there
	lock   *pgxpool.Conn // holds the session's advisory lock
	in     *synth.Institution
	order  []string // site names
	states map[string]moodletest.State
	dir    string // scratch directory of the session
}

// drillConns bounds each drill's warehouse connections, so that the
// drills running at once stay well inside the server's max_connections.
const drillConns = 8

// goodNights is how many nights the world runs before the drills: the
// first publishes everything, the second adds the group members the first
// one's IMS file enrolled, and the world is then quiet.
const goodNights = 2

// buildWorld makes the drill world in the scratch database: reset and
// migrated, the synthetic university written into it, its sites simulated,
// and goodNights nights run, each site's IMS task applying the file after
// each night.
func buildWorld(ctx context.Context, o Options) (*world, error) {
	b := &world{o: o, log: o.Log, dsn: o.dsn(), states: map[string]moodletest.State{}}
	if b.log == nil {
		b.log = io.Discard
	}
	name, err := databaseName(b.dsn)
	if err != nil {
		return nil, err
	}
	b.name = name
	if b.admin, err = warehouse.Open(ctx, config.DSN(warehouse.WithDatabase(b.dsn, "postgres")), 2); err != nil {
		return nil, fmt.Errorf("%w\n(mim drill needs the local PostgreSQL: run ./scripts/setup, or set %s)", err, DSNVariable)
	}
	ok := false
	defer func() {
		if !ok {
			b.close()
		}
	}()
	// One session at a time per scratch database: the copies share names.
	if b.lock, err = b.admin.Acquire(ctx); err != nil {
		return nil, err
	}
	var locked bool
	if err := b.lock.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext('mim drill ' || $1))`, name).Scan(&locked); err != nil {
		return nil, err
	}
	if !locked {
		return nil, fmt.Errorf("another mim drill is using the scratch database %s (set %s to another)", name, DSNVariable)
	}
	if err := b.ensureDatabase(ctx); err != nil {
		return nil, err
	}
	if b.dir, err = os.MkdirTemp("", "mim-drill-"); err != nil {
		return nil, err
	}
	pool, err := warehouse.Open(ctx, config.DSN(b.dsn), 12)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	if err := warehouse.Reset(ctx, pool, Environment); err != nil {
		return nil, fmt.Errorf("%w (set %s to another database)", err, DSNVariable)
	}
	if _, err := warehouse.Migrate(ctx, pool, nil); err != nil {
		return nil, err
	}
	if _, _, err := warehouse.EnsureDeployment(ctx, pool, Environment, "mim drill"); err != nil {
		return nil, err
	}
	if b.in, err = synth.Generate(synth.Options{Scale: synth.Small, Seed: 1, Year: academicYear(time.Now())}); err != nil {
		return nil, err
	}
	if _, err := b.in.Write(ctx, pool, "", nil); err != nil {
		return nil, err
	}
	if _, err := synth.InsertMappings(ctx, pool, b.in.Mappings, "mim drill"); err != nil {
		return nil, err
	}
	sims := map[string]*moodletest.Site{}
	defer func() {
		for _, s := range sims {
			_ = s.Close()
		}
	}()
	var ws []synth.WorldSite
	for _, s := range b.in.Sites {
		sim, tok, err := startSite(*s.State)
		if err != nil {
			return nil, fmt.Errorf("starting the simulated site %s: %w", s.Name, err)
		}
		sims[s.Name] = sim
		b.order = append(b.order, s.Name)
		ws = append(ws, synth.WorldSite{Name: s.Name, URL: sim.URL(), Token: tok})
	}
	out := filepath.Join(b.dir, "world")
	cfg, err := synth.Config(synth.ConfigOptions{Environment: Environment, DSN: b.dsn, Out: out, MinYear: b.in.Year, Sites: ws})
	if err != nil {
		return nil, fmt.Errorf("the drill world's configuration: %w", err)
	}
	for night := 1; night <= goodNights; night++ {
		fmt.Fprintf(b.log, "\n==== the drill world: good night %d\n", night)
		res, err := o.Night(ctx, cfg, b.log)
		if res == nil || res.ExitCode() != 0 {
			return nil, fmt.Errorf("the drill world's good night %d did not succeed (%v); run with --verbose to see it", night, err)
		}
		if _, _, err := applyFiles(cfg, b.order, sims, out); err != nil {
			return nil, err
		}
	}
	for name, s := range sims {
		b.states[name] = s.Snapshot()
	}
	ok = true
	return b, nil
}

// ensureDatabase creates the scratch database when it does not exist.
func (b *world) ensureDatabase(ctx context.Context) error {
	var exists bool
	if err := b.admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, b.name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	if _, err := b.admin.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{b.name}.Sanitize()); err != nil {
		return fmt.Errorf("creating the scratch database %s: %w", b.name, err)
	}
	return nil
}

func (b *world) close() {
	if b.lock != nil {
		_, _ = b.lock.Exec(context.Background(), `SELECT pg_advisory_unlock_all()`)
		b.lock.Release()
	}
	if b.admin != nil {
		b.admin.Close()
	}
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}

// copyName is the name of drill n's copy of the world's database.
func (b *world) copyName(n int, suffix string) string {
	return fmt.Sprintf("%s_d%d%s", b.name, n, suffix)
}

// dropDatabase drops a copy, ending its sessions.
func (b *world) dropDatabase(ctx context.Context, name string) error {
	_, err := b.admin.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`)
	return err
}

// copyFor makes drill n's world: a copy of the scratch database (claimed
// as the drill says), fresh simulators of the sites as the world left
// them, and the configuration naming them.
func (b *world) copyFor(ctx context.Context, n int, d Drill) (*World, error) {
	name := b.copyName(n, "")
	if err := b.dropDatabase(ctx, name); err != nil {
		return nil, err
	}
	if _, err := b.admin.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`,
		pgx.Identifier{name}.Sanitize(), pgx.Identifier{b.name}.Sanitize())); err != nil {
		return nil, fmt.Errorf("copying the drill world: %w", err)
	}
	w := &World{Drill: d.Name, DSN: warehouse.WithDatabase(b.dsn, name), Sites: map[string]*moodletest.Site{}, In: b.in,
		Out: filepath.Join(b.dir, d.Name), base: b}
	pool, err := warehouse.Open(ctx, config.DSN(w.DSN), 4)
	if err != nil {
		return w, err
	}
	w.Pool = pool
	env := Environment
	if d.Claim != "" {
		env = d.Claim
	}
	if !d.Unclaimed {
		// A copy of a labelled warehouse is bound to the original's
		// identity: it is claimed, as an operator claims a restored copy.
		if _, err := warehouse.Claim(ctx, pool, env, "mim drill"); err != nil {
			return w, err
		}
	}
	var ws []synth.WorldSite
	for _, site := range b.order {
		sim, tok, err := startSite(b.states[site])
		if err != nil {
			return w, fmt.Errorf("starting the simulated site %s: %w", site, err)
		}
		w.Sites[site] = sim
		ws = append(ws, synth.WorldSite{Name: site, URL: sim.URL(), Token: tok, Environment: Environment})
	}
	w.Cfg, err = synth.Config(synth.ConfigOptions{Environment: env, DSN: w.DSN, Out: w.Out, MinYear: b.in.Year, Sites: ws,
		MaxConns: drillConns})
	if err != nil {
		return w, fmt.Errorf("the drill's configuration: %w", err)
	}
	return w, nil
}

// close stops the drill's sites and drops its databases.
func (w *World) close(b *world) {
	for _, s := range w.Sites {
		_ = s.Close()
	}
	if w.Pool != nil {
		w.Pool.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := b.admin.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE $1`, strings.ReplaceAll(databaseOf(w.DSN), "_", `\_`)+"%")
	if err != nil {
		return
	}
	names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, n := range names {
		_ = b.dropDatabase(ctx, n)
	}
}

// scratchDatabase creates an empty database beside the drill's copy (for a
// source that must live elsewhere) and returns its DSN; it is dropped with
// the copy.
func (w *World) scratchDatabase(ctx context.Context, suffix, options string) (string, error) {
	name := databaseOf(w.DSN) + "_" + suffix
	if err := w.base.dropDatabase(ctx, name); err != nil {
		return "", err
	}
	if _, err := w.base.admin.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+" "+options); err != nil {
		return "", fmt.Errorf("creating %s: %w", name, err)
	}
	return warehouse.WithDatabase(w.DSN, name), nil
}

func startSite(st moodletest.State) (*moodletest.Site, string, error) {
	tok := randomToken()
	sim, err := moodletest.New(st, moodletest.WithToken(tok), moodletest.WithDebug(false))
	if err != nil {
		return nil, "", err
	}
	if err := sim.Start(); err != nil {
		return nil, "", err
	}
	return sim, tok, nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// databaseName is the database a DSN names; a drill must name one.
func databaseName(dsn string) (string, error) {
	name := databaseOf(dsn)
	if name == "" || name == "postgres" || strings.HasPrefix(name, "template") {
		return "", fmt.Errorf("%s must name a scratch database of its own (e.g. %s), not %q", DSNVariable, DefaultDSN, name)
	}
	return name, nil
}

func databaseOf(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		return strings.TrimPrefix(u.Path, "/")
	}
	for _, f := range strings.Fields(dsn) {
		if k, v, ok := strings.Cut(f, "="); ok && k == "dbname" {
			return v
		}
	}
	return ""
}

// academicYear is the start year of the academic year t falls in (the
// synthetic university's, so its term dates are real).
func academicYear(t time.Time) int {
	if t.Month() >= time.August {
		return t.Year()
	}
	return t.Year() - 1
}

// caught describes the guards that refused or held something in run.
func (w *World) caught(ctx context.Context, runID int64) ([]string, error) {
	// The biggest loss first: it is the headline of what was caught.
	rows, err := w.Pool.Query(ctx, `SELECT guard, instance, subject, coalesce(previous, 0), coalesce(current, 0),
			coalesce(percent, 0)::float8, detail::text
		FROM ctl.guard_event WHERE run_id = $1 AND decision IN ('refused', 'held')
		ORDER BY coalesce(previous, 0) DESC, event_id`, runID)
	if err != nil {
		return nil, fmt.Errorf("reading the night's guard decisions: %w", err)
	}
	type event struct {
		guard, instance, subject, detail string
		previous, current                int64
		percent                          float64
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (event, error) {
		var e event
		err := r.Scan(&e.guard, &e.instance, &e.subject, &e.previous, &e.current, &e.percent, &e.detail)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the night's guard decisions: %w", err)
	}
	var out []string
	seen := map[string]bool{} // one line per guard and site
	envLine := map[string]int{}
	for _, e := range events {
		if e.guard == envguard.Name {
			// One line per refusal, naming every site it refused.
			if i, ok := envLine[e.subject]; ok {
				if !seen[e.guard+"/"+e.subject+"/"+e.instance] {
					out[i] = strings.TrimSuffix(out[i], ")") + ", " + e.instance + ")"
				}
				seen[e.guard+"/"+e.subject+"/"+e.instance] = true
				continue
			}
			seen[e.guard+"/"+e.subject+"/"+e.instance] = true
			envLine[e.subject] = len(out)
			out = append(out, fmt.Sprintf("environment guard: %s (sites %s)", e.subject, e.instance))
			continue
		}
		if key := e.guard + "/" + e.instance; !seen[key] {
			seen[key] = true
			out = append(out, describe(e.guard, e.instance, e.subject, e.detail, e.previous, e.current, e.percent))
		}
	}
	return out, nil
}

// describe says in a few words what one guard decision caught.
func describe(g, instance, subject, detail string, previous, current int64, percent float64) string {
	switch g {
	case guard.Completeness:
		what := strings.Replace(subject, "/", " ", 1)
		if strings.HasPrefix(subject, "moodle/") {
			what = strings.TrimPrefix(subject, "moodle/") + " of site " + instance
		}
		if strings.Contains(detail, `"written": 0,`) || strings.Contains(detail, `"written": 0}`) {
			return fmt.Sprintf("completeness: %s came back empty (%s before)", what, records(previous))
		}
		return fmt.Sprintf("completeness: %s would lose %d of %s (%.0f%%)", what, previous-current, records(previous), percent)
	case guard.CourseDrop:
		return fmt.Sprintf("course_drop held %s: %d of %d students", subject, previous-current, previous)
	case guard.GroupMemberDrop:
		return fmt.Sprintf("group_member_drop held %s: %d of %d members", subject, previous-current, previous)
	case guard.GroupDeleteBudget:
		return fmt.Sprintf("group_delete_budget: %d groups and groupings of %d MIM groups", current, previous)
	case guard.MemberRemoveBudget:
		return fmt.Sprintf("member_remove_budget: %d of %d members", previous-current, previous)
	}
	return fmt.Sprintf("%s of %s: %s %d -> %d (%.0f%%)", g, instance, subject, previous, current, percent)
}

func records(n int64) string {
	if n == 1 {
		return "1 record"
	}
	return fmt.Sprintf("%d records", n)
}
