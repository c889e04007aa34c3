package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/progress"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/load"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// scratch is the bench's own database on the server.
type scratch struct {
	admin *pgxpool.Pool
	name  string
	dsn   config.DSN
}

// createScratch drops the database name (unless it is another
// environment's warehouse) and creates it empty.
func createScratch(ctx context.Context, server, name string) (*scratch, error) {
	admin, err := warehouse.Open(ctx, config.DSN(server), 2)
	if err != nil {
		return nil, fmt.Errorf("%w\n(the bench needs a PostgreSQL server whose role may create databases: run ./scripts/setup, or set MIM_BENCH_DATABASE_URL)", err)
	}
	s := &scratch{admin: admin, name: name, dsn: config.DSN(warehouse.WithDatabase(server, name))}
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		admin.Close()
		return nil, fmt.Errorf("looking for database %s: %w", name, err)
	}
	if exists {
		if err := s.checkOurs(ctx); err != nil {
			admin.Close()
			return nil, err
		}
		if err := s.drop(ctx); err != nil {
			admin.Close()
			return nil, err
		}
	}
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		admin.Close()
		return nil, fmt.Errorf("creating the bench database %s: %w", name, err)
	}
	return s, nil
}

// checkOurs refuses to drop a database that is some environment's
// warehouse other than a bench's.
func (s *scratch) checkOurs(ctx context.Context) error {
	pool, err := warehouse.Open(ctx, s.dsn, 1)
	if err != nil {
		return err
	}
	defer pool.Close()
	var labelled bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('ctl.deployment') IS NOT NULL`).Scan(&labelled); err != nil {
		return fmt.Errorf("looking at database %s: %w", s.name, err)
	}
	if !labelled {
		return nil
	}
	d, err := warehouse.GetDeployment(ctx, pool)
	if err != nil {
		return err
	}
	if d != nil && d.Environment != Environment {
		return fmt.Errorf("database %s is the warehouse of environment %q: the bench drops only its own database (choose another with --database)", s.name, d.Environment)
	}
	return nil
}

func (s *scratch) drop(ctx context.Context) error {
	if _, err := s.admin.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{s.name}.Sanitize()+` WITH (FORCE)`); err != nil {
		return fmt.Errorf("dropping the bench database %s: %w", s.name, err)
	}
	return nil
}

func (s *scratch) close() { s.admin.Close() }

// setup creates the scratch warehouse, writes the synthetic SITS and CMIS
// with their mappings, starts the simulated sites and writes the
// configuration the children run with.
func (b *bench) setup(ctx context.Context) error {
	o := &b.o
	var err error
	if b.db, err = createScratch(ctx, o.Server, o.Database); err != nil {
		return err
	}
	b.rep.Database = config.RedactDSN(b.db.dsn.Reveal())
	if b.pool, err = warehouse.Open(ctx, b.db.dsn, 8); err != nil {
		return err
	}
	if _, err := warehouse.Migrate(ctx, b.pool, nil); err != nil {
		return err
	}
	if _, _, err := warehouse.EnsureDeployment(ctx, b.pool, Environment, "mim bench"); err != nil {
		return err
	}
	b.logf("database %s created and migrated", b.rep.Database)

	start := time.Now()
	if b.in, err = synth.Generate(synth.Options{Scale: o.Scale, Seed: o.Seed, Year: o.Year}); err != nil {
		return err
	}
	gen := time.Since(start)
	start = time.Now()
	tables, err := b.in.Write(ctx, b.pool, "", nil)
	if err != nil {
		return err
	}
	var rows int64
	for _, t := range tables {
		rows += t.Rows
	}
	if _, err := synth.InsertMappings(ctx, b.pool, b.in.Mappings, "mim bench"); err != nil {
		return err
	}
	m := b.in.Manifest
	b.rep.Setup = fmt.Sprintf("%s students, %s module registrations, %s CMIS groups: generated in %s, %s SITS/CMIS rows written in %s",
		progress.Count(int64(m.Students)), progress.Count(int64(m.Registrations)), progress.Count(int64(m.CMISGroups)),
		round(gen), progress.Count(rows), round(time.Since(start)))
	b.logf("synthetic university: %s", b.rep.Setup)

	sites := b.in.Sites
	b.rep.Sites = nil
	if o.Sites > 0 && o.Sites < len(sites) {
		sites = sites[:o.Sites]
	}
	for _, s := range sites {
		tok := randomHex(16)
		site, err := moodletest.New(*s.State, moodletest.WithToken(tok), moodletest.WithLatency(o.Latency), moodletest.WithDebug(false))
		if err != nil {
			return fmt.Errorf("building the simulated site %s: %w", s.Name, err)
		}
		if err := site.Start(); err != nil {
			return fmt.Errorf("starting the simulated site %s: %w", s.Name, err)
		}
		ss := &simSite{name: s.Name, site: site, token: tok, log: &requestLog{}}
		site.OnRequest(func(moodletest.Request) { ss.log.add(time.Now()) })
		b.sites = append(b.sites, ss)
		sm, _ := m.Site(s.Name)
		b.rep.Sites = append(b.rep.Sites, SiteInfo{Name: s.Name, Courses: sm.Courses, Users: sm.Users, Enrolments: sm.Enrolments,
			Groups: sm.Groups, Archive: s.Archive})
	}
	return b.writeConfig()
}

// writeConfig writes the children's configurations, one per way of
// reading the sites: the scratch warehouse, the synthetic SITS and CMIS,
// the simulated sites read through their web services (KindWS) or from
// their tables (KindDB). The DSNs and the tokens are variables of the
// children's environment, never in the files.
func (b *bench) writeConfig() error {
	b.env = append(os.Environ(), "MIM_BENCH_DSN="+b.db.dsn.Reveal())
	if b.o.ProfileDir != "" {
		b.env = append(b.env, ProfileDirEnv+"="+b.o.ProfileDir)
	}
	for i, s := range b.sites {
		b.env = append(b.env, fmt.Sprintf("MIM_BENCH_TOKEN_%d=%s", i, s.token), fmt.Sprintf("MIM_BENCH_MOODLE_DB_%d=%s", i, b.replicaDSN(s.name)))
	}
	b.configs = map[string]string{}
	for _, kind := range []string{KindWS, KindDB} {
		path := b.path("mim-" + kind + ".yaml")
		text := b.configText(kind)
		// Parsed here first, so a mistake is the bench's and says so.
		if _, err := config.Parse([]byte(text), func(k string) (string, bool) { return lookupEnv(b.env, k) }); err != nil {
			return fmt.Errorf("the bench's configuration: %w", err)
		}
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			return fmt.Errorf("writing the bench's configuration: %w", err)
		}
		b.configs[kind] = path
	}
	return nil
}

// configText is the children's configuration with the sites read as kind
// says.
func (b *bench) configText(kind string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "environment: %s\nwarehouse: {dsn: \"${MIM_BENCH_DSN}\", max_conns: 12}\n", Environment)
	sits, cmis := synth.Schemas("")
	fmt.Fprintf(&sb, "sources:\n  sits: {driver: pgx, dsn: \"${MIM_BENCH_DSN}\", schema: %s, min_year: %d}\n  cmis: {driver: pgx, dsn: \"${MIM_BENCH_DSN}\", schema: %s}\n",
		sits, b.in.Year, cmis)
	if len(b.sites) > 0 {
		sb.WriteString("moodle:\n")
	}
	for i, s := range b.sites {
		read := ""
		if kind == KindDB {
			read = fmt.Sprintf(", kind: moodle-db, database: {driver: pgx, dsn: \"${MIM_BENCH_MOODLE_DB_%d}\"}", i)
		}
		// rate_per_second at its maximum never binds: concurrency ÷
		// latency (400/s at 8 and 20ms) is the limit being measured.
		fmt.Fprintf(&sb, "  - {name: %s, url: %q, token: \"${MIM_BENCH_TOKEN_%d}\", environment: %s, rate_per_second: 1000, concurrency: %d, group_prefix: %q, known_profile_fields: [%s]%s}\n",
			s.name, s.site.URL(), i, Environment, b.o.Concurrency, synth.GroupPrefix, strings.Join(synth.ProfileFieldNames(), ", "), read)
	}
	fmt.Fprintf(&sb, "exports:\n  dir: %q\n  profile_fields:\n", b.path("out"))
	for _, f := range [][2]string{{"student_number", "studentno"}, {"programme_code", "progcode"}, {"programme_name", "programme"},
		{"ug_pg", "ugpg"}, {"year_level", "yearlevel"}, {"approved_modules", "approvedmodules"}, {"preapproval_modules", "preapprovalmodules"}} {
		fmt.Fprintf(&sb, "    - {column: %s, shortname: %s}\n", f[0], f[1])
	}
	sb.WriteString("log: {level: warn}\n")
	return sb.String()
}

func lookupEnv(env []string, k string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], k+"="); ok {
			return v, true
		}
	}
	return "", false
}

// resetRaw empties raw before the first night, so that night reads every
// source for the first time whatever the stages before it landed (the load
// stage's deletions and the extract stage's rows).
func (b *bench) resetRaw(ctx context.Context) error {
	if !b.o.want(StageLoad) && !b.o.want(StageExtract) {
		return nil
	}
	if err := load.Empty(ctx, b.pool); err != nil {
		return fmt.Errorf("emptying raw before the first night: %w", err)
	}
	return nil
}

// requestLog keeps the time of every request a site answered.
type requestLog struct {
	mu    sync.Mutex
	times []time.Time
}

func (l *requestLog) add(t time.Time) {
	l.mu.Lock()
	l.times = append(l.times, t)
	l.mu.Unlock()
}

// count returns the requests answered in [from, to].
func (l *requestLog) count(from, to time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, t := range l.times {
		if !t.Before(from) && !t.After(to) {
			n++
		}
	}
	return n
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
