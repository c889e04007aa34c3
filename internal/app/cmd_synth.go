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
	Help:    helpText("synth"),
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
