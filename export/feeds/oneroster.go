package feeds

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/export/deliver"
	"github.com/mimwarehouse/mim/export/guard"
	"github.com/mimwarehouse/mim/export/oneroster"
	"github.com/mimwarehouse/mim/internal/ledger"
)

// OneRosterMart is the relation the OneRoster feed comes from.
const OneRosterMart = "mart.exp_oneroster"

// OneRosterThreshold is the OneRoster feed's threshold guard (users and
// enrollments against the last published set).
const OneRosterThreshold = guard.OneRosterThreshold

// OneRosterFileName is the name of a site's OneRoster zip.
func OneRosterFileName(site string) string { return "oneroster-" + site + ".zip" }

// orPlan is a site's OneRoster set, measured inside the feed's
// transaction (temporary table mim_or_delta).
type orPlan struct {
	bulk                  bool
	modes                 map[string]oneroster.Mode
	active, gone          map[string]int64
	users, enrols         int64 // in the new set
	prevUsers, prevEnrols int64
	first                 bool
}

// planOneRoster compares the mart with what the last OneRoster export of
// the site told its consumer (ctl.published_oneroster): a bulk set the first
// time and with --full, else a delta of new and changed rows (active) and
// removed ones (tobedeleted).
func planOneRoster(ctx context.Context, tx pgx.Tx, site string, full bool) (*orPlan, error) {
	ok, err := martExists(ctx, tx, OneRosterMart)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNoMart
	}
	p := &orPlan{modes: map[string]oneroster.Mode{}, active: map[string]int64{}, gone: map[string]int64{}}
	err = tx.QueryRow(ctx, `SELECT (counts->>'users')::bigint, (counts->>'enrollments')::bigint FROM ctl.export_run
		WHERE instance = $1 AND feed = 'oneroster' AND status IN ('published', 'empty') ORDER BY export_id DESC LIMIT 1`,
		site).Scan(&p.prevUsers, &p.prevEnrols)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		p.first = true
	case err != nil:
		return nil, fmt.Errorf("reading the last OneRoster export of site %s: %w", site, err)
	}
	p.bulk = full || p.first
	if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS pg_temp.mim_or_delta`); err != nil {
		return nil, err
	}
	// kind: new, changed, same (active rows) or gone (published, no longer
	// in the mart).
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE mim_or_delta ON COMMIT DROP AS
		WITH t AS (SELECT file, sourced_id, fields, md5(array_to_string(fields, chr(31), '')) AS hash
		           FROM `+OneRosterMart+` WHERE instance = $1),
		     p AS (SELECT file, sourced_id, fields, hash FROM ctl.published_oneroster WHERE instance = $1)
		SELECT coalesce(t.file, p.file) AS file, coalesce(t.sourced_id, p.sourced_id) AS sourced_id,
		       coalesce(t.fields, p.fields) AS fields, t.hash,
		       CASE WHEN p.sourced_id IS NULL THEN 'new' WHEN t.sourced_id IS NULL THEN 'gone'
		            WHEN t.hash <> p.hash THEN 'changed' ELSE 'same' END AS kind
		FROM t FULL JOIN p ON p.file = t.file AND p.sourced_id = t.sourced_id`, site); err != nil {
		return nil, fmt.Errorf("computing the OneRoster delta of site %s: %w", site, err)
	}
	rows, err := tx.Query(ctx, `SELECT file, count(*) FILTER (WHERE kind <> 'gone'),
			count(*) FILTER (WHERE kind IN ('new', 'changed')), count(*) FILTER (WHERE kind = 'gone')
		FROM mim_or_delta GROUP BY file`)
	if err != nil {
		return nil, fmt.Errorf("measuring the OneRoster delta of site %s: %w", site, err)
	}
	for rows.Next() {
		var file string
		var all, changed, gone int64
		if err := rows.Scan(&file, &all, &changed, &gone); err != nil {
			rows.Close()
			return nil, err
		}
		switch file {
		case "users":
			p.users = all
		case "enrollments":
			p.enrols = all
		}
		if p.bulk {
			p.active[file] = all
		} else {
			p.active[file], p.gone[file] = changed, gone
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, f := range oneroster.Files {
		switch {
		case p.bulk:
			p.modes[f] = oneroster.Bulk
		case p.active[f]+p.gone[f] > 0:
			p.modes[f] = oneroster.Delta
		default:
			p.modes[f] = oneroster.Absent
		}
	}
	return p, nil
}

// sends reports whether the set holds anything to send.
func (p *orPlan) sends() bool {
	for _, f := range oneroster.Files {
		if p.modes[f] != oneroster.Absent && (p.bulk || p.active[f]+p.gone[f] > 0) {
			return true
		}
	}
	return false
}

// runOneRoster writes one site's OneRoster 1.2 CSV set.
func (x *Exporter) runOneRoster(ctx context.Context, run *ledger.Run, site *Site, opts Options, res *Result) error {
	tx, err := x.begin(ctx)
	if err != nil {
		return err
	}
	defer rollback(ctx, tx)
	p, err := planOneRoster(ctx, tx, site.Name, opts.Full)
	if errors.Is(err, errNoMart) {
		res.Status = StatusSkipped
		res.note("%s has not been built yet (run mim transform)", OneRosterMart)
		return nil
	}
	if err != nil {
		return err
	}
	s, err := guard.ReadSettings(ctx, tx)
	if err != nil {
		return err
	}
	// Removing users and enrollments downstream is guarded like memberships.
	check := guard.Check{Guard: OneRosterThreshold, Instance: site.Name, Limit: s.ThresholdPercent, First: p.first,
		Measures: []guard.Measure{{Subject: "users", Previous: p.prevUsers, Current: p.users},
			{Subject: "enrollments", Previous: p.prevEnrols, Current: p.enrols}}}
	res.Rows = p.enrols
	for _, f := range oneroster.Files {
		res.Adds += p.active[f]
		res.Drops += p.gone[f]
	}
	if p.bulk {
		res.note("bulk: every row (first OneRoster export of the site, or --full)")
	}
	decision, done, err := x.decide(ctx, tx, run, check, s, OneRoster, opts, res)
	if done || err != nil {
		return err
	}
	status := StatusEmpty
	var file deliver.File
	if p.sends() {
		if file, err = x.writeOneRoster(ctx, tx, site, p); err != nil {
			return err
		}
		if err := x.publishFile(ctx, run.ID, site.Name, OneRoster, file, res); err != nil {
			return err
		}
		status = StatusPublished
	} else {
		res.note("nothing changed since the last OneRoster export: no file written")
	}
	counts := map[string]any{"users": p.users, "enrollments": p.enrols, "bulk": p.bulk, "delivered": res.Delivered}
	for _, f := range oneroster.Files {
		counts[f] = p.active[f]
		counts[f+"_deleted"] = p.gone[f]
	}
	exportID, err := insertExportRun(ctx, tx, exportRow{runID: run.ID, instance: site.Name, feed: OneRoster, full: opts.Full,
		status: status, file: file.Name, archive: res.Archive, sum: file.SHA256, bytes: file.Size, counts: counts})
	if err != nil {
		return err
	}
	// What the consumer now has: the mart's rows.
	if _, err := tx.Exec(ctx, `DELETE FROM ctl.published_oneroster p USING mim_or_delta d
		WHERE p.instance = $1 AND p.file = d.file AND p.sourced_id = d.sourced_id AND d.kind = 'gone'`, site.Name); err != nil {
		return fmt.Errorf("recording the OneRoster export of site %s: %w", site.Name, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ctl.published_oneroster (instance, file, sourced_id, hash, fields, export_id)
		SELECT $1, file, sourced_id, hash, fields, $2 FROM mim_or_delta WHERE kind IN ('new', 'changed') OR ($3 AND kind = 'same')
		ON CONFLICT (instance, file, sourced_id) DO UPDATE SET hash = EXCLUDED.hash, fields = EXCLUDED.fields,
			export_id = EXCLUDED.export_id, published_at = now()`, site.Name, exportID, p.bulk); err != nil {
		return fmt.Errorf("recording the OneRoster export of site %s: %w", site.Name, err)
	}
	if _, err := guard.Record(ctx, tx, guard.CheckEvent(run.ID, check, decision, string(OneRoster))); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("recording the OneRoster export of site %s: %w", site.Name, err)
	}
	res.Status, res.ExportID = status, exportID
	return nil
}

// writeOneRoster streams the set into the site's zip and checks it whole.
func (x *Exporter) writeOneRoster(ctx context.Context, tx pgx.Tx, site *Site, p *orPlan) (deliver.File, error) {
	write := func(w io.Writer) error {
		ow, err := oneroster.NewWriter(w, p.modes, "MIM "+site.Name, x.now())
		if err != nil {
			return err
		}
		for _, f := range oneroster.Files {
			if p.modes[f] == oneroster.Absent {
				continue
			}
			if err := ow.Begin(f); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `SELECT sourced_id, fields, kind FROM mim_or_delta
				WHERE file = $1 AND ($2 AND kind <> 'gone' OR NOT $2 AND kind <> 'same') ORDER BY sourced_id`, f, p.bulk)
			if err != nil {
				return fmt.Errorf("reading the OneRoster %s of site %s: %w", f, site.Name, err)
			}
			for rows.Next() {
				var r oneroster.Row
				var kind string
				if err := rows.Scan(&r.SourcedID, &r.Fields, &kind); err != nil {
					rows.Close()
					return err
				}
				if !p.bulk {
					r.Status = oneroster.Active
					if kind == "gone" {
						r.Status = oneroster.ToBeDeleted
					}
				}
				// A row the mart built wrong fails the whole set: a
				// OneRoster consumer applies files whole, and a missing
				// row would read as a deletion.
				if err := ow.Write(r); err != nil {
					rows.Close()
					return fmt.Errorf("%s: %w", OneRosterMart, err)
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return ow.Close()
	}
	verify := func(r io.Reader) error {
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		_, err = oneroster.Validate(data)
		return err
	}
	f, err := deliver.WriteFile(ctx, x.siteFile(OneRosterFileName(site.Name)), write, deliver.Verify(verify))
	if err != nil {
		return f, fmt.Errorf("writing the OneRoster set of site %s: %w", site.Name, err)
	}
	return f, nil
}
