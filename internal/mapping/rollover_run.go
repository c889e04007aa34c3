package mapping

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/progress"
	"github.com/mimwarehouse/mim/internal/schedule"
)

// Rollover is one walk of the academic-year rollover checklist (`mim
// rollover`): a dry run made inside a transaction that is rolled back,
// unless Apply.
type Rollover struct {
	Year       int
	Apply      bool
	Reason, By string
	RunID      int64
	// Rebuild rebuilds the marts inside tx for the dry run, writing what it
	// found to w (nil: --no-transform).
	Rebuild func(ctx context.Context, tx pgx.Tx, w io.Writer) error
	// Export is the export stage's preview of what the next export sends.
	Export ExportPreviewer
}

// Run walks the checklist in tx, writing each step to w. It commits tx
// only when Apply; the caller rolls it back otherwise.
func (r Rollover) Run(ctx context.Context, tx pgx.Tx, w io.Writer) error {
	plan, err := PlanRollover(ctx, tx, r.Year)
	if err != nil {
		return err
	}
	mode := "DRY RUN: nothing will change (use --apply)"
	if r.Apply {
		mode = "APPLYING"
	}
	fmt.Fprintf(w, "Academic year rollover to %d/%02d — %s\n\n", r.Year, (r.Year+1)%100, mode)
	if err := writePause(ctx, tx, w, r.Year); err != nil {
		return err
	}
	plan.WriteText(w)
	runID := r.RunID
	applied, err := ApplyRollover(ctx, tx, plan, r.By, r.Reason, &runID)
	if err != nil {
		return err
	}
	if r.Apply {
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("committing the rollover: %w", err)
		}
		fmt.Fprintf(w, "\nDone: %d mappings deactivated;", applied.Deactivated)
		for _, s := range applied.Settings {
			fmt.Fprintf(w, " %s %q -> %q;", s.Key, s.Old, s.New)
		}
		fmt.Fprintln(w)
		writeRolloverNext(w, r.Year)
		return nil
	}
	fmt.Fprintln(w, "\n6. Dry run of the next export, with steps 1-3 made inside a transaction that is rolled back:")
	if r.Rebuild != nil {
		if err := r.Rebuild(ctx, tx, w); err != nil {
			return err
		}
	}
	if err := writeExportPreview(ctx, tx, w, r.Export); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nDry run only: everything above was rolled back. Run again with --apply --reason \"...\" to make steps 1-3.\n")
	writeRolloverNext(w, r.Year)
	return nil
}

// writePause is step 0: whether mim pause holds the schedules.
func writePause(ctx context.Context, tx pgx.Tx, w io.Writer, year int) error {
	switch p, err := schedule.CurrentPause(ctx, tx); {
	case err != nil:
		return err
	case p != nil:
		fmt.Fprintf(w, "0. Schedules: %s. Good: no night runs until `mim resume` (step 8).\n", p)
	default:
		fmt.Fprintf(w, "0. Schedules: NOT paused. Before applying, run `mim pause --reason \"rollover %d\"` so that no scheduled night\n"+
			"   runs half-way through these changes (runs started by hand still run); `mim resume` at step 8.\n", year)
	}
	return nil
}

// WriteText writes steps 1 to 4 of the plan.
func (p *RolloverPlan) WriteText(w io.Writer) {
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

// writeExportPreview shows what the next export would send and drop: the
// export stage's own preview, inside the rollover's transaction.
func writeExportPreview(ctx context.Context, tx pgx.Tx, w io.Writer, x ExportPreviewer) error {
	previews, err := x.PreviewExport(ctx, tx)
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

func writeRolloverNext(w io.Writer, year int) {
	fmt.Fprintf(w, `
Then, by hand:
5. Once SITS shows %d, run 'mim run' (extract, transform, export).
6. Check the feeds: essentially empty, and no mass unenrolment.
7. Test adding and removing a %d module occurrence mapping ('mim mappings import', 'mim mappings deactivate --course').
8. Release: let staff map their courses again ('mim settings set staff_edits_frozen false --reason ...'), and 'mim resume' the schedules 'mim pause' held.
`, year, year)
}
