package demo

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/progress"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// resetWarehouse empties the demo warehouse (every schema the migrations
// create; a database labelled with another environment is refused),
// migrates and labels it, and empties the output directory.
func (d *demo) resetWarehouse(ctx context.Context) error {
	if err := warehouse.Reset(ctx, d.pool, Environment); err != nil {
		return fmt.Errorf("%w (set MIM_DEMO_DATABASE_URL to another database)", err)
	}
	if _, err := warehouse.Migrate(ctx, d.pool, nil); err != nil {
		return err
	}
	if _, _, err := warehouse.EnsureDeployment(ctx, d.pool, Environment, "mim demo"); err != nil {
		return err
	}
	if err := os.RemoveAll(d.out); err != nil {
		return fmt.Errorf("clearing %s: %w", d.out, err)
	}
	if err := os.MkdirAll(d.out, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", d.out, err)
	}
	return nil
}

// university writes the synthetic institution's SITS and CMIS views and
// its course mappings into the demo warehouse.
func (d *demo) university(ctx context.Context) error {
	year := d.o.Year
	if year == 0 {
		year = CurrentAcademicYear(time.Now())
	}
	in, err := synth.Generate(synth.Options{Scale: d.o.Scale, Seed: d.o.Seed, Year: year})
	if err != nil {
		return err
	}
	d.in = in
	var rows int64
	tables, err := in.Write(ctx, d.pool, "", nil)
	if err != nil {
		return err
	}
	for _, t := range tables {
		rows += t.Rows
	}
	m := in.Manifest
	fmt.Fprintf(d.w, "%s rows in %s tables: %s students (%s active), %s module registrations, %s CMIS groups\n",
		progress.Count(rows), progress.Count(int64(len(tables))), progress.Count(int64(m.Students)), progress.Count(int64(m.ActiveStudents)),
		progress.Count(int64(m.Registrations)), progress.Count(int64(m.CMISGroups)))
	mres, err := synth.InsertMappings(ctx, d.pool, in.Mappings, "mim demo")
	if err != nil {
		return err
	}
	fmt.Fprintln(d.w, progress.Counted(int64(mres.Created+mres.Updated+mres.Unchanged), "course mapping", "course mappings"))
	return nil
}

// startSites starts a simulator of each of the university's Moodle sites,
// each with a token of its own.
func (d *demo) startSites() error {
	for _, s := range d.in.Sites {
		tok := randomToken()
		site, err := moodletest.New(*s.State, moodletest.WithToken(tok), moodletest.WithLatency(d.o.Latency), moodletest.WithDebug(false))
		if err != nil {
			return fmt.Errorf("building the simulated site %s: %w", s.Name, err)
		}
		if err := site.Start(); err != nil {
			return fmt.Errorf("starting the simulated site %s: %w", s.Name, err)
		}
		d.sims[s.Name] = site
		ds := Site{Name: s.Name, URL: site.URL(), Token: tok}
		if d.o.MoodleDB {
			ds.DB = withSearchPath(d.dsn, moodleSchema(s.Name))
		}
		d.sites = append(d.sites, ds)
		sm, _ := d.in.Manifest.Site(s.Name)
		kind := ""
		if s.Archive {
			kind = " (archive: last year, mappings inactive)"
		}
		fmt.Fprintf(d.w, "%-10s %s  %s courses, %s users, %s enrolments%s\n", s.Name, site.URL(), progress.Count(int64(sm.Courses)),
			progress.Count(int64(sm.Users)), progress.Count(int64(sm.Enrolments)), kind)
	}
	return nil
}

// stopSites stops the simulators.
func (d *demo) stopSites() {
	for _, s := range d.sims {
		_ = s.Close()
	}
}

// moodleSchema is the schema holding a demo site's Moodle tables.
func moodleSchema(site string) string { return "moodle_" + strings.ReplaceAll(site, "-", "_") }

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

// replicateSites writes each site's current content into its schema of
// the demo database, replacing what was there, as a replica would hold it.
func (d *demo) replicateSites(ctx context.Context) error {
	for _, s := range d.sites {
		schema := pgx.Identifier{moodleSchema(s.Name)}.Sanitize()
		if _, err := d.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE; CREATE SCHEMA "+schema); err != nil {
			return fmt.Errorf("preparing the tables of %s: %w", s.Name, err)
		}
		// The site's read is read-only; its copy is written through a
		// connection of its own.
		db, err := sql.Open("pgx", s.DB)
		if err != nil {
			return err
		}
		err = d.sims[s.Name].WriteTables(ctx, db, moodletest.Postgres, moodletest.TableOptions{})
		db.Close()
		if err != nil {
			return fmt.Errorf("writing the tables of %s: %w", s.Name, err)
		}
	}
	return nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
