package app

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/demo"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

var synthCommand = Command{
	Name:    "synth",
	Group:   "Operations",
	Summary: "write a synthetic institution's SITS and CMIS views into PostgreSQL",
	Usage:   "mim synth [--scale small|medium|ucl] [--schema-prefix P] [--seed N] [--dsn DSN] [--mappings] [--mappings-csv FILE] [--moodle-json DIR] [--manifest FILE]",
	Help: `Generates a deterministic synthetic university (the same scale and seed always
give the same data) and writes its SITS views (UCL_BDO_V_MOODLE_*) into the
schema <P>sismgr and its CMIS views (CMIS_MOODLE_V_*) into <P>moodlemgr, as
tables with the views' names and columns, so that sources.sits and
sources.cmis with driver pgx read them exactly as they would read Oracle:

  sources:
    sits: {driver: pgx, dsn: <this database>, schema: <P>sismgr}
    cmis: {driver: pgx, dsn: <this database>, schema: <P>moodlemgr}

The data carries the real world's quirks: 9-digit CMIS student codes against
8-digit SITS ones, '/' in period codes, GUID ids beside natural keys,
withdrawn and interrupted students, missing names and e-mails, non-ASCII
names, routes under several programmes, departments without a faculty or id.

It writes into the configured warehouse database unless --dsn names another.
Re-running replaces the schemas synth made before; a schema of the same name
that synth did not make is never dropped.

Scales: small (300 students, 2 Moodle sites: for tests), medium (5,000, 3
sites), ucl (50,000 students, 290,000 module registrations, 38,000 CMIS
groups, 15,000 Moodle courses on 4 sites).

The matching Moodle sites (accounts, courses named by the mapping
convention, enrolments drifted from SITS, groups) are made for the simulator;
--moodle-json writes each one's state as DIR/<site>.json. --mappings puts the
course mappings into ctl.course_mapping (run mim migrate first);
--mappings-csv writes them in the format of mim mappings import. --manifest
writes what was planted (the counts the transforms must reproduce).`,
	Setup: func(fs *flag.FlagSet) Runner {
		scale := fs.String("scale", "small", "`size`: small, medium or ucl")
		prefix := fs.String("schema-prefix", "", "`prefix` of the schemas created (lower case), e.g. demo_")
		seed := fs.Uint64("seed", 1, "random `seed`; another seed makes another institution of the same shape")
		year := fs.Int("year", 0, "current academic start `year`, 2025 for 2025/26 (default: the current one, switching in August)")
		dsn := fs.String("dsn", "", "PostgreSQL `DSN` to write to instead of the configured warehouse")
		mappings := fs.Bool("mappings", false, "also insert the course mappings into ctl.course_mapping")
		mappingsCSV := fs.String("mappings-csv", "", "write the course mappings as CSV to `FILE`")
		moodleJSON := fs.String("moodle-json", "", "write each simulated Moodle site's state to `DIR`/<site>.json")
		manifest := fs.String("manifest", "", "write the manifest (planted counts) as JSON to `FILE`")
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) != 0 {
				return Usagef("synth takes no arguments")
			}
			sc, err := synth.ParseScale(*scale)
			if err != nil {
				return Usagef("--scale: %v", err)
			}
			if err := synth.CheckPrefix(*prefix); err != nil {
				return Usagef("--schema-prefix: %v", err)
			}
			if *year == 0 {
				*year = demo.CurrentAcademicYear(time.Now())
			}
			return runSynth(ctx, e, synthOptions{opts: synth.Options{Scale: sc, Seed: *seed, Year: *year}, prefix: *prefix,
				dsn: *dsn, mappings: *mappings, files: synth.Files{MappingsCSV: *mappingsCSV, MoodleJSON: *moodleJSON, Manifest: *manifest}})
		}
	},
}

type synthOptions struct {
	opts     synth.Options
	prefix   string
	dsn      string
	mappings bool
	files    synth.Files
}

func runSynth(ctx context.Context, e *Env, o synthOptions) error {
	var (
		pool   *pgxpool.Pool
		target config.DSN
		err    error
	)
	if o.dsn != "" {
		target = config.DSN(o.dsn)
		if pool, err = warehouse.Open(ctx, target, 4); err != nil {
			return err
		}
		defer pool.Close()
	} else {
		cfg, err := e.Config()
		if err != nil {
			return fmt.Errorf("%w (or pass --dsn)", err)
		}
		target = cfg.Warehouse.DSN
		if pool, err = e.Warehouse(ctx); err != nil {
			return err
		}
	}
	start := time.Now()
	in, err := synth.Generate(o.opts)
	if err != nil {
		return Usagef("%v", err)
	}
	fmt.Fprintf(e.Stdout, "generated scale %s, seed %d, year %d in %s\n", in.Scale, in.Seed, in.Year, time.Since(start).Round(time.Millisecond))
	if err := in.Load(ctx, pool, o.prefix, target, e.Stdout); err != nil {
		return err
	}
	if o.mappings {
		res, err := synth.InsertMappings(ctx, pool, in.Mappings, Who())
		if err != nil {
			return fmt.Errorf("%w (is the database migrated? run mim migrate)", err)
		}
		fmt.Fprintf(e.Stdout, "course mappings: %d created, %d updated, %d unchanged\n", res.Created, res.Updated, res.Unchanged)
	}
	if err := in.WriteFiles(o.files, e.Stdout); err != nil {
		return err
	}
	return in.Manifest.WriteText(e.Stdout)
}
