package feeds

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/export/guard"
	"github.com/mimwarehouse/mim/export/tutor"
	"github.com/mimwarehouse/mim/internal/ledger"
)

// planTutor loads and measures a site's tutor table inside tx.
func planTutor(ctx context.Context, tx pgx.Tx, site *Site) (*tutor.Plan, guard.Check, guard.Settings, error) {
	var c guard.Check
	ok, err := martExists(ctx, tx, tutor.Mart)
	if err != nil {
		return nil, c, guard.Settings{}, err
	}
	if !ok {
		return nil, c, guard.Settings{}, errNoMart
	}
	s, err := guard.ReadSettings(ctx, tx)
	if err != nil {
		return nil, c, s, err
	}
	p, err := tutor.Prepare(ctx, tx, site.Name)
	if err != nil {
		return nil, c, s, err
	}
	// Guarded like memberships (docs/formats.md §4): the rows, and the pairs
	// kept (a removed pair is an assignment the plugin deletes).
	c = guard.Check{Guard: guard.TutorThreshold, Instance: site.Name, Limit: s.ThresholdPercent, First: p.Previous == 0,
		Measures: []guard.Measure{
			{Subject: "rows", Previous: p.Previous, Current: p.Rows},
			{Subject: "kept_pairs", Previous: p.Previous, Current: p.Kept()},
		}}
	return p, c, s, nil
}

// runTutor publishes one site's tutor table.
func (x *Exporter) runTutor(ctx context.Context, run *ledger.Run, site *Site, opts Options, res *Result) error {
	tx, err := x.begin(ctx)
	if err != nil {
		return err
	}
	defer rollback(ctx, tx)
	p, check, s, err := planTutor(ctx, tx, site)
	if errors.Is(err, errNoMart) {
		res.Status = StatusSkipped
		res.note("%s has not been built yet (run mim transform)", tutor.Mart)
		return nil
	}
	if err != nil {
		return err
	}
	res.Rows, res.Adds, res.Drops, res.Skipped = p.Rows, p.Added, p.Removed, p.Invalid
	for _, pr := range p.Problems {
		res.note("left out: %s", pr)
	}
	if p.Invalid > int64(len(p.Problems)) {
		res.note("%d rows left out in all", p.Invalid)
	}
	decision, done, err := x.decide(ctx, tx, run, check, s, Tutor, opts, res)
	if done || err != nil {
		return err
	}
	exportID, err := insertExportRun(ctx, tx, exportRow{runID: run.ID, instance: site.Name, feed: Tutor, full: opts.Full,
		status: StatusPublished, file: p.View, counts: map[string]any{"rows": p.Rows, "previous": p.Previous,
			"added": p.Added, "removed": p.Removed, "invalid": p.Invalid}})
	if err != nil {
		return err
	}
	if err := p.Publish(ctx, tx, exportID); err != nil {
		return err
	}
	id, err := guard.Record(ctx, tx, guard.CheckEvent(run.ID, check, decision, string(Tutor)))
	if err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("publishing the tutor table of site %s: %w", site.Name, err)
	}
	res.Status, res.ExportID, res.Delivered = StatusPublished, exportID, p.View
	if decision == guard.Overridden {
		body := fmt.Sprintf("threshold_override was armed, so the tutor table of %s was published although it is below threshold_percent;\n"+
			"the override has lapsed.\n\nSite: %s\nView: %s\n\n", site.Name, site.Name, p.View)
		x.send(ctx, s, guard.Notice{Subject: fmt.Sprintf("MIM threshold override used: the tutor table of %s was published despite the threshold", site.Name),
			Body: body + measuresText(check), Events: []int64{id}}, res)
	}
	return nil
}

// decide settles a feed's threshold check inside tx: a dry run only says
// what would happen; a refusal rolls tx back and is recorded and mailed.
// done reports that the feed stops here (dry run or refused).
func (x *Exporter) decide(ctx context.Context, tx pgx.Tx, run *ledger.Run, c guard.Check, s guard.Settings, feed Feed, opts Options,
	res *Result) (decision string, done bool, err error) {
	if opts.DryRun {
		res.Status = StatusDryRun
		res.Decisions = append(res.Decisions, c.Describe(wouldDecide(c, s.Override)))
		return "", true, nil
	}
	decision, err = c.DecideIn(ctx, tx, run.ID, x.by)
	if err != nil {
		return "", true, err
	}
	res.Decisions = append(res.Decisions, c.Describe(decision))
	if decision == guard.Refused {
		rollback(ctx, tx)
		return decision, true, x.refuse(ctx, run.ID, c, feed, s, res)
	}
	return decision, false, nil
}
