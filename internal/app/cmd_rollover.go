package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/export/feeds"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/mapping"
	"github.com/mimwarehouse/mim/internal/night"
	"github.com/mimwarehouse/mim/internal/progress"
	"github.com/mimwarehouse/mim/internal/schedule"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/transform"
)

var rolloverCommand = Command{
	Name:    "rollover",
	Group:   "Warehouse",
	Summary: "walk the academic-year rollover checklist; a dry run unless --apply",
	Usage:   "mim rollover --year YYYY [--apply] [--reason TEXT] [--no-transform]",
	Help: `The incumbent's "Academic Year Rollover" checklist, with what MIM can do
and check itself:

  0. Before step 1, hold the schedules: mim pause --reason "rollover YYYY"
     (no night runs half-way through the changes; runs by hand still run).
  1. Global deactivation of every SITS and CMIS course mapping (an inactive
     mapping freezes its course's enrolments as they are); staff edits
     through the LTI tool are frozen until the release (step 8).
  2. academic_year := YYYY (the Portico block's academic year).
  3. min_mod_occ_year := YYYY. No override is armed: the export's threshold
     compares only courses that are not frozen, so the deactivated courses
     are not a drop and the new year's courses are measured on their own.
  4. SITS readiness: whether the module views already show YYYY (they switch
     when the registry rolls SIW_MRG_AYR over; confirm the date with them).
  5-8. Run 'mim run', check the feeds hold no mass unenrolment, test adding
     and removing a new-year mapping, then release, and mim resume the
     schedules.

Without --apply it is a dry run: steps 1-3 are made inside a transaction,
the marts are rebuilt there (unless --no-transform), the export's view of
what it would send, and what the warehouse knows of the drops, are shown,
and everything is rolled back. With --apply steps 1-3 are committed, each
change recorded with who, when and --reason.`,
	Setup: func(fs *flag.FlagSet) Runner {
		year := fs.Int("year", 0, "the new academic start `YYYY` (e.g. 2026 for 2026/27)")
		apply := fs.Bool("apply", false, "make the changes (default: a dry run that changes nothing)")
		reason := fs.String("reason", "", "why, kept in the mapping and settings history (e.g. who agreed the override)")
		noTransform := fs.Bool("no-transform", false, "dry run: do not rebuild the marts inside the rehearsal")
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) != 0 {
				return Usagef("rollover takes no arguments")
			}
			if *year == 0 {
				return Usagef("--year YYYY is required")
			}
			return rollover(ctx, e, *year, *apply, *reason, *noTransform)
		}
	},
}

func rollover(ctx context.Context, e *Env, year int, apply bool, reason string, noTransform bool) (err error) {
	cfg, err := e.Config()
	if err != nil {
		return err
	}
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return err
	}
	run, err := ledger.Begin(ctx, pool, "rollover", cfg.Environment, VersionString(), e.Args)
	if err != nil {
		return err
	}
	defer func() { _ = run.Finish(ctx, ledger.Outcome(err), ExitCode(err), err) }()
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	plan, err := mapping.PlanRollover(ctx, tx, year)
	if err != nil {
		return err
	}
	w := e.Stdout
	mode := "DRY RUN: nothing will change (use --apply)"
	if apply {
		mode = "APPLYING"
	}
	fmt.Fprintf(w, "Academic year rollover to %d/%02d — %s\n\n", year, (year+1)%100, mode)
	switch p, err := schedule.CurrentPause(ctx, tx); {
	case err != nil:
		return err
	case p != nil:
		fmt.Fprintf(w, "0. Schedules: %s. Good: no night runs until `mim resume` (step 8).\n", p)
	default:
		fmt.Fprintf(w, "0. Schedules: NOT paused. Before applying, run `mim pause --reason \"rollover %d\"` so that no scheduled night\n"+
			"   runs half-way through these changes (runs started by hand still run); `mim resume` at step 8.\n", year)
	}
	printRolloverPlan(w, plan)

	runID := run.ID
	applied, err := mapping.ApplyRollover(ctx, tx, plan, Who(), reason, &runID)
	if err != nil {
		return err
	}
	if apply {
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("committing the rollover: %w", err)
		}
		fmt.Fprintf(w, "\nDone: %d mappings deactivated;", applied.Deactivated)
		for _, s := range applied.Settings {
			fmt.Fprintf(w, " %s %q -> %q;", s.Key, s.Old, s.New)
		}
		fmt.Fprintln(w)
		printRolloverNext(w, year)
		return nil
	}

	fmt.Fprintln(w, "\n6. Dry run of the next export, with steps 1-3 made inside a transaction that is rolled back:")
	if !noTransform {
		p, perr := transform.LoadEmbedded()
		if perr != nil {
			return perr
		}
		t0 := time.Now()
		res, terr := transform.Execute(ctx, tx, p, transform.Options{StatementTimeout: cfg.Warehouse.StatementTimeout,
			LockTimeout: cfg.Warehouse.LockTimeout, Hooks: night.TransformHooks(cfg, Who(), run.ID)})
		var ce *transform.CheckError
		switch {
		case errors.As(terr, &ce):
			fmt.Fprintf(w, "   the marts were rebuilt, but %d checks would fail (a real transform would keep yesterday's marts):\n", len(ce.Failures))
			for _, f := range ce.Failures {
				fmt.Fprintf(w, "   - %s\n", f)
			}
		case terr != nil:
			return fmt.Errorf("rebuilding the marts in the rehearsal: %w", terr)
		default:
			fmt.Fprintf(w, "   marts rebuilt as they would be: %d models in %s\n", len(res.Models), time.Since(t0).Round(time.Millisecond))
		}
	}
	if err := previewDrops(ctx, e, tx, w); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nDry run only: everything above was rolled back. Run again with --apply --reason \"...\" to make steps 1-3.\n")
	printRolloverNext(w, year)
	return nil
}

func printRolloverPlan(w io.Writer, p *mapping.RolloverPlan) {
	fmt.Fprintf(w, "1. Global deactivation: %d active mappings become inactive (their enrolments freeze as they are)\n", p.ToDeactivateTotal)
	for _, c := range p.ToDeactivate {
		y := c.AcademicYear
		if y == "" {
			y = "any year"
		}
		fmt.Fprintf(w, "   %-12s %-10s %-18s %s\n", c.Instance, y, c.Kind, progress.Count(c.Mappings))
	}
	for _, pc := range p.Published {
		fmt.Fprintf(w, "   site %s: Moodle holds %s active memberships from MIM in %s of these courses\n",
			pc.Instance, progress.Count(pc.ActiveMemberships), progress.Count(pc.Courses))
	}
	fmt.Fprintf(w, "2. academic_year: %d -> %d\n", p.AcademicYear, p.Year)
	fmt.Fprintf(w, "3. min_mod_occ_year: %d -> %d (no override armed: frozen courses are not compared)\n", p.MinModOccYear, p.Year)
	n, known := p.SITSReady()
	switch {
	case !known:
		fmt.Fprintln(w, "4. SITS readiness: unknown (staging has not been built; run mim extract and mim transform)")
	case n == 0:
		fmt.Fprintf(w, "4. SITS readiness: NO module instances for %d yet: SIW_MRG_AYR has probably not been rolled over; confirm the date with the registry\n", p.Year)
	default:
		fmt.Fprintf(w, "4. SITS readiness: %s module instances for %d in staging\n", progress.Count(n), p.Year)
	}
	for _, y := range p.SITSYears {
		fmt.Fprintf(w, "   %d: %s module instances, %s occurrences\n", y.Year, progress.Count(y.ModuleInstances), progress.Count(y.Occurrences))
	}
}

// previewDrops shows what the next export would send and drop: the export
// stage's own preview, inside the rollover's transaction.
func previewDrops(ctx context.Context, e *Env, tx pgx.Tx, w io.Writer) error {
	cfg, err := e.Config()
	if err != nil {
		return err
	}
	previews, err := feeds.NewPreviewer(wire.Feeds(cfg)).PreviewExport(ctx, tx)
	if err != nil {
		return fmt.Errorf("previewing the export: %w", err)
	}
	for _, p := range previews {
		fmt.Fprintf(w, "   %s %s: %s adds, %s drops, %s changes; %s\n", p.Instance, p.Feed, progress.Count(p.Adds),
			progress.Count(p.Drops), progress.Count(p.Changes), p.Decision)
		for _, d := range p.SampleDrops {
			fmt.Fprintf(w, "     - drop %s\n", d)
		}
	}
	return nil
}

func printRolloverNext(w io.Writer, year int) {
	fmt.Fprintf(w, `
Then, by hand:
5. Once SITS shows %d, run 'mim run' (extract, transform, export).
6. Check the feeds: essentially empty, and no mass unenrolment.
7. Test adding and removing a %d module occurrence mapping ('mim mappings import', 'mim mappings deactivate --course').
8. Release: let staff map their courses again ('mim settings set staff_edits_frozen false --reason ...'), and 'mim resume' the schedules 'mim pause' held.
`, year, year)
}
