package feeds

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/export/deliver"
	"github.com/mimwarehouse/mim/export/merge"
	"github.com/mimwarehouse/mim/internal/ledger"
)

// MergeMart is the relation the merge list comes from.
const MergeMart = "mart.exp_merge_candidates"

// mergePairs reads a site's candidates, puts them in an order the plugin
// can run, and leaves out the pairs the list cannot carry (saying which).
func mergePairs(ctx context.Context, tx pgx.Tx, instance string, res *Result) ([]merge.Pair, error) {
	rows, err := tx.Query(ctx, `SELECT coalesce(from_userid, 0)::bigint, coalesce(to_userid, 0)::bigint,
			coalesce(from_username::text, ''), coalesce(to_username::text, ''),
			coalesce(from_idnumber::text, ''), coalesce(to_idnumber::text, ''),
			coalesce(reason::text, ''), coalesce(keep_reason::text, ''), coalesce(evidence::text, '')
		FROM `+MergeMart+` WHERE instance = $1 ORDER BY seq, from_userid, to_userid`, instance)
	if err != nil {
		return nil, fmt.Errorf("reading %s for site %s: %w", MergeMart, instance, err)
	}
	pairs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (merge.Pair, error) {
		var p merge.Pair
		err := r.Scan(&p.FromUserID, &p.ToUserID, &p.FromUsername, &p.ToUsername, &p.FromIDNumber, &p.ToIDNumber, &p.Reason,
			&p.KeepReason, &p.Evidence)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s for site %s: %w", MergeMart, instance, err)
	}
	res.Rows = int64(len(pairs))
	ordered, err := merge.Order(pairs)
	if err != nil {
		return nil, fmt.Errorf("merge list of site %s: %w", instance, err)
	}
	// Leave out the pairs Validate names, and check again: dropping a pair
	// can only remove later problems, so this ends.
	for range len(ordered) + 1 {
		err := merge.Validate(ordered)
		var ve *merge.ValidationError
		if !errors.As(err, &ve) {
			return ordered, err
		}
		bad := map[int]bool{}
		for _, p := range ve.Problems {
			bad[p.Seq] = true
			res.note("pair left out: %s", p)
		}
		res.Skipped += int64(len(bad))
		kept := ordered[:0:0]
		for i, p := range ordered {
			if !bad[i+1] {
				kept = append(kept, p)
			}
		}
		ordered = kept
	}
	return nil, errors.New("merge list: the pairs could not be made valid")
}

// runMerge writes one site's merge list, a new file per run
// (merge-<site>-<runid>.csv), for review or the site-side gathering
// (moodle-side/tool_mergeusers), and records every pair it carried in
// ctl.merge_sent: a pair sent and later seen done in Moodle (the removed
// account suspended and unenrolled) is never proposed again, and its
// student code moves to the kept account (mart.exp_idnumber_carry).
func (x *Exporter) runMerge(ctx context.Context, run *ledger.Run, site *Site, opts Options, res *Result) error {
	tx, err := x.begin(ctx)
	if err != nil {
		return err
	}
	defer rollback(ctx, tx)
	ok, err := martExists(ctx, tx, MergeMart)
	if err != nil {
		return err
	}
	if !ok {
		res.Status = StatusSkipped
		res.note("%s has not been built yet (run mim transform)", MergeMart)
		return nil
	}
	pairs, err := mergePairs(ctx, tx, site.Name, res)
	if err != nil {
		return err
	}
	res.Adds = int64(len(pairs))
	if err := noteResent(ctx, tx, site.Name, pairs, res); err != nil {
		return err
	}
	if opts.DryRun {
		res.Status = StatusDryRun
		return nil
	}
	status := StatusEmpty
	var file deliver.File
	if len(pairs) > 0 {
		write := func(w io.Writer) error { return merge.Write(w, pairs, merge.WithEvidence()) }
		verify := func(r io.Reader) error { return checkCSV(r, len(merge.Header)+1) }
		file, err = deliver.WriteFile(ctx, x.siteFile(merge.FileName(site.Name, run.ID)), write, deliver.Verify(verify))
		if err != nil {
			return fmt.Errorf("writing the merge list of site %s: %w", site.Name, err)
		}
		if err := x.publishFile(ctx, run.ID, site.Name, Merge, file, res); err != nil {
			return err
		}
		status = StatusPublished
	} else {
		res.note("no merge candidates: no file written")
	}
	reasons := map[string]int{}
	for _, p := range pairs {
		reasons[p.Reason]++
	}
	exportID, err := insertExportRun(ctx, tx, exportRow{runID: run.ID, instance: site.Name, feed: Merge, status: status,
		file: file.Name, archive: res.Archive, sum: file.SHA256, bytes: file.Size,
		counts: map[string]any{"candidates": res.Rows, "pairs": len(pairs), "left_out": res.Skipped, "reasons": reasons,
			"delivered": res.Delivered}})
	if err != nil {
		return err
	}
	if err := recordSent(ctx, tx, site.Name, run.ID, exportID, pairs); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("recording the merge list of site %s: %w", site.Name, err)
	}
	res.Status, res.ExportID = status, exportID
	return nil
}

// recordSent keeps the pairs a published list carried (ctl.merge_sent).
func recordSent(ctx context.Context, tx pgx.Tx, instance string, runID, exportID int64, pairs []merge.Pair) error {
	if len(pairs) == 0 {
		return nil
	}
	rows := make([][]any, len(pairs))
	for i, p := range pairs {
		rows[i] = []any{instance, p.FromUserID, p.ToUserID, p.FromUsername, p.ToUsername, p.ToIDNumber, p.Reason, p.KeepReason,
			exportID, runID}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ctl", "merge_sent"}, []string{"instance", "from_userid", "to_userid",
		"from_username", "to_username", "student_code", "reason", "keep_reason", "export_id", "run_id"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("recording the pairs of the merge list of site %s in ctl.merge_sent: %w", instance, err)
	}
	return nil
}

// noteResent says how many pairs earlier lists carried already: Moodle has
// not merged them since (a merge done is never proposed again), so the
// site's tool_mergeusers may not be run on the lists, or refuses them.
func noteResent(ctx context.Context, tx pgx.Tx, instance string, pairs []merge.Pair, res *Result) error {
	if len(pairs) == 0 {
		return nil
	}
	from := make([]int64, len(pairs))
	for i, p := range pairs {
		from[i] = p.FromUserID
	}
	var n, first int64
	if err := tx.QueryRow(ctx, `SELECT count(DISTINCT from_userid), coalesce(min(run_id), 0) FROM ctl.merge_sent
		WHERE instance = $1 AND from_userid = ANY($2)`, instance, from).Scan(&n, &first); err != nil {
		return fmt.Errorf("reading the merges sent to site %s: %w", instance, err)
	}
	if n > 0 {
		res.note("%s sent before (the first in run %d) and not merged since: is tool_mergeusers run with MIM's gathering on %s "+
			"(docs/moodle-side.md §10), and what does its log say?", plural(n, "pair was", "pairs were"), first, instance)
	}
	return nil
}
