package feeds

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/export/csvfeed"
	"github.com/mimwarehouse/mim/export/deliver"
	"github.com/mimwarehouse/mim/internal/ledger"
)

// ProfileMart is the relation the profile CSV comes from.
const ProfileMart = "mart.exp_profile_fields"

// ProfileFileName is the name of a site's profile CSV, the --file of its
// tool_uploaduser run.
func ProfileFileName(site string) string { return "profile-" + site + ".csv" }

// profileQuery builds the SELECT of the rows to send (see profileChanged;
// all rows when all is set), the jsonb object of a row's values and the
// condition on the mart's rows the file takes. Column names come from
// ProfileColumns and shortnames are validated by the configuration,
// so both are safe in the text.
//
// With carry, the rows that move a student code after an observed merge
// (mart.exp_idnumber_carry) are in, first the accounts the code is cleared
// from, each carrying its values as Moodle has them (stg.moodle_user_field:
// only the idnumber changes), and the object of a carry row holds the
// idnumber sent under the key carryKey, so that it is published, pending
// and observed like a field. Without carry they are left out.
func profileQuery(pf []ProfileField, all, carry bool) (query, object, filter string, err error) {
	var cols, pairs []string
	for _, f := range pf {
		if !slices.Contains(ProfileColumns, f.Column) {
			return "", "", "", fmt.Errorf("exports.profile_fields: %q is not a column of %s", f.Column, ProfileMart)
		}
		if strings.ContainsAny(f.Shortname, `'"\`) || f.Shortname == "" {
			return "", "", "", fmt.Errorf("exports.profile_fields: %q is not a shortname", f.Shortname)
		}
		col := "m." + pgx.Identifier{f.Column}.Sanitize() + "::text"
		if carry {
			col = `(CASE WHEN m.carry = 'clear' THEN (SELECT uf.value FROM stg.moodle_user_field uf
				WHERE uf.instance = m.instance AND uf.user_id = m.user_id AND uf.shortname = '` + f.Shortname + `') ELSE ` + col + ` END)`
		}
		cols = append(cols, col)
		pairs = append(pairs, "'"+f.Shortname+"', coalesce("+col+", '')")
	}
	object = "jsonb_build_object(" + strings.Join(pairs, ", ") + ")"
	head, order := "coalesce(m.username::text, ''), "+object+"::text", "m.username, "+object+"::text"
	filter = "m.carry IS NULL"
	if carry {
		object = "(" + object + " || CASE WHEN m.carry IS NOT NULL THEN jsonb_build_object('" + carryKey +
			"', coalesce(m.idnumber::text, '')) ELSE '{}'::jsonb END)"
		head = "coalesce(m.username::text, ''), " + object + "::text, coalesce(m.carry::text, ''), coalesce(m.idnumber::text, '')"
		order = "(m.carry IS DISTINCT FROM 'clear'), m.username, " + object + "::text"
		filter = "true"
	}
	query = `SELECT ` + head + `, ` + strings.Join(cols, ", ") + `
		FROM ` + ProfileMart + ` m ` + profileJoins + `
		WHERE m.instance = $1 AND ` + filter + ` AND ` + profileChanged(object, all) + `
		ORDER BY ` + order
	return query, object, filter, nil
}

// carryKey is the key of the idnumber a carry row sent, in the published
// and pending values (no profile field shortname has a colon); what Moodle
// has is compared under the same key (reconcileProfile).
const carryKey = ":idnumber"

// profileJoins bring what was last published and what is pending (sent,
// not yet seen in Moodle) beside each row of the mart, m.
const profileJoins = `LEFT JOIN ctl.published_profile p ON p.instance = m.instance AND p.username = m.username
		LEFT JOIN ctl.pending_profile q ON q.instance = m.instance AND q.username = m.username`

// profileChanged selects the rows to send: values that differ from what
// was last published, and the accounts whose values are still pending.
func profileChanged(object string, all bool) string {
	if all {
		return "true"
	}
	return "(p.fields IS NULL OR NOT p.fields @> " + object + " OR q.username IS NOT NULL)"
}

// ProfileFieldError says exports.profile_fields names fields a site is not
// known to have: tool_uploaduser rejects the whole file for one unknown
// column, so the site's profile CSV is not written.
type ProfileFieldError struct {
	Instance string
	Unknown  []string
	Known    []string
}

func (e *ProfileFieldError) Error() string {
	known := "none"
	if len(e.Known) > 0 {
		known = strings.Join(e.Known, ", ")
	}
	return fmt.Sprintf("exports.profile_fields names %s that site %s is not known to have (known: %s); Moodle's tool_uploaduser "+
		"rejects the whole file for one unknown column, so no profile CSV was written. MIM learns a site's fields from its users' values: "+
		"if the field exists but no account holds a value yet, list it in the site's known_profile_fields",
		strings.Join(e.Unknown, ", "), e.Instance, known)
}

// checkProfileFields refuses profile fields the site is not known to have:
// neither seen among its users' values (stg.moodle_profile_field) nor
// listed in its known_profile_fields.
func checkProfileFields(ctx context.Context, tx pgx.Tx, site *Site, pf []ProfileField) error {
	known := slices.Clone(site.KnownProfileFields)
	ok, err := martExists(ctx, tx, "stg.moodle_profile_field")
	if err != nil {
		return err
	}
	if ok {
		rows, err := tx.Query(ctx, `SELECT shortname FROM stg.moodle_profile_field WHERE instance = $1`, site.Name)
		if err != nil {
			return fmt.Errorf("reading the profile fields of site %s: %w", site.Name, err)
		}
		seen, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("reading the profile fields of site %s: %w", site.Name, err)
		}
		known = append(known, seen...)
	}
	slices.Sort(known)
	known = slices.Compact(known)
	e := &ProfileFieldError{Instance: site.Name, Known: known}
	for _, f := range pf {
		if !slices.Contains(known, f.Shortname) {
			e.Unknown = append(e.Unknown, f.Shortname)
		}
	}
	if len(e.Unknown) > 0 {
		return e
	}
	return nil
}

// runProfile runs the profile CSV of one site: only the accounts whose
// values changed since the last published file (all of them with --full).
func (x *Exporter) runProfile(ctx context.Context, run *ledger.Run, site *Site, opts Options, res *Result) error {
	if len(x.cfg.ProfileFields) == 0 {
		res.Status = StatusSkipped
		res.note("exports.profile_fields lists no field: no profile CSV")
		return nil
	}
	tx, err := x.begin(ctx)
	if err != nil {
		return err
	}
	defer rollback(ctx, tx)
	p := &profileRun{x: x, tx: tx, site: site, opts: opts, res: res, pf: x.cfg.ProfileFields}
	if ready, err := p.prepare(ctx, run); err != nil || !ready {
		return err
	}
	if err := p.count(ctx); err != nil {
		return err
	}
	if opts.DryRun {
		res.Status = StatusDryRun
		return nil
	}
	status := StatusEmpty
	if p.changed > 0 {
		if err := p.write(ctx, run); err != nil {
			return err
		}
		status = StatusPublished
	} else {
		res.note("no account's values changed: no file written")
	}
	p.noteSkipped()
	exportID, err := p.record(ctx, run, status)
	if err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("recording the profile CSV of site %s: %w", site.Name, err)
	}
	res.Status, res.ExportID = status, exportID
	x.mailCarry(ctx, site.Name, p.cp, res)
	return nil
}

// profileRun is one site's profile CSV in the making, in its transaction.
type profileRun struct {
	x    *Exporter
	tx   pgx.Tx
	site *Site
	opts Options
	res  *Result
	pf   []ProfileField

	// obs and actual are what Moodle was seen to apply of earlier files.
	obs    observed
	actual bool
	// cp plans the student codes moved after merges; carry says whether
	// this file moves some (its idnumber column).
	cp    *carryPlan
	carry bool
	// query reads the rows to send; object is a row's fields as JSON and
	// filter the rows of the site the file covers.
	query, object, filter string
	changed               int64

	skipped []string
	sent    []profileRow
	file    deliver.File
}

// prepare checks the mart and the fields, reconciles what Moodle applied,
// plans the student codes and builds the query; false when there is no
// mart to read yet (the feed is skipped).
func (p *profileRun) prepare(ctx context.Context, run *ledger.Run) (bool, error) {
	ok, err := martExists(ctx, p.tx, ProfileMart)
	if err != nil {
		return false, err
	}
	if !ok {
		p.res.Status = StatusSkipped
		p.res.note("%s has not been built yet (run mim transform)", ProfileMart)
		return false, nil
	}
	if err := checkProfileFields(ctx, p.tx, p.site, p.pf); err != nil {
		return false, err
	}
	// What Moodle was seen to apply of the earlier files is no longer
	// pending; the rest goes into this file again.
	if p.obs, p.actual, err = reconcileProfile(ctx, p.tx, p.site.Name); err != nil {
		return false, err
	}
	runID := int64(0)
	if run != nil {
		runID = run.ID
	}
	if p.cp, err = planCarry(ctx, p.tx, p.site, p.x.cfg.CarryIDNumber, runID, p.x.by, p.opts.DryRun, p.res); err != nil {
		return false, err
	}
	p.carry = p.cp.send && p.cp.clears+p.cp.sets > 0
	p.query, p.object, p.filter, err = profileQuery(p.pf, p.opts.Full, p.carry)
	return err == nil, err
}

// count counts the site's rows, those whose values changed and those sent
// again because Moodle has not shown them yet.
func (p *profileRun) count(ctx context.Context) error {
	var resends int64
	if err := p.tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE `+profileChanged(p.object, false)+`),
			count(*) FILTER (WHERE q.username IS NOT NULL AND p.fields @> `+p.object+`)
		FROM `+ProfileMart+` m `+profileJoins+`
		WHERE m.instance = $1 AND `+p.filter, p.site.Name).Scan(&p.res.Rows, &p.changed, &resends); err != nil {
		return fmt.Errorf("counting the profile rows of site %s: %w", p.site.Name, err)
	}
	if err := p.x.notePending(ctx, p.tx, p.site.Name, Profile, p.obs, resends, 0, p.res); err != nil {
		return err
	}
	if p.opts.Full {
		p.changed = p.res.Rows
	}
	p.res.Changes = p.changed
	return nil
}

// fields are the file's columns after the username.
func (p *profileRun) fields() []csvfeed.Field {
	fields := make([]csvfeed.Field, len(p.pf))
	for i, f := range p.pf {
		fields[i] = f.Field
	}
	if p.carry {
		fields = append(fields, csvfeed.IDNumber)
	}
	return fields
}

// write writes the file under a temporary name, checks it and publishes it.
func (p *profileRun) write(ctx context.Context, run *ledger.Run) error {
	fields := p.fields()
	write := func(w io.Writer) error { return p.writeRows(ctx, w, fields) }
	verify := func(r io.Reader) error { return checkCSV(r, len(fields)+1) }
	var err error
	p.file, err = deliver.WriteFile(ctx, p.x.siteFile(ProfileFileName(p.site.Name)), write, deliver.Verify(verify))
	if err != nil {
		return fmt.Errorf("writing the profile CSV of site %s: %w", p.site.Name, err)
	}
	return p.x.publishFile(ctx, run.ID, p.site.Name, Profile, p.file, p.res)
}

// writeRows writes the file's rows: each account whose values changed
// (with its student code when the file moves codes); a row the writer
// refuses is left out and noted.
func (p *profileRun) writeRows(ctx context.Context, w io.Writer, fields []csvfeed.Field) error {
	cw, err := csvfeed.NewWriter(w, fields)
	if err != nil {
		return err
	}
	rows, err := p.tx.Query(ctx, p.query, p.site.Name)
	if err != nil {
		return fmt.Errorf("reading %s: %w", ProfileMart, err)
	}
	defer rows.Close()
	vals := make([]*string, len(p.pf))
	var username, object, action, idnumber string
	dst := []any{&username, &object}
	if p.carry {
		dst = append(dst, &action, &idnumber)
	}
	for i := range vals {
		dst = append(dst, &vals[i])
	}
	values := make([]string, len(fields))
	for rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			return fmt.Errorf("reading %s: %w", ProfileMart, err)
		}
		for i, v := range vals {
			values[i] = ""
			if v != nil {
				values[i] = *v
			}
		}
		put := cw.Write
		if p.carry {
			// An empty idnumber clears it: only a clear row may send one.
			if idnumber == "" && action != "clear" {
				p.skipped = append(p.skipped, username)
				p.res.note("row of %s left out: no idnumber to re-assert in a file that moves student codes", username)
				continue
			}
			values[len(p.pf)] = idnumber
			if action == "clear" {
				put = cw.WriteCurrent // its values are the site's own
			}
		}
		if err := p.put(put, username, object, values); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", ProfileMart, err)
	}
	return cw.Close()
}

// put writes one row; a row the writer refuses is left out and noted (the
// first three by name), anything else fails the file.
func (p *profileRun) put(put func(string, ...string) error, username, object string, values []string) error {
	if err := put(username, values...); err != nil {
		var re *csvfeed.RowError
		if !errors.As(err, &re) {
			return err
		}
		p.skipped = append(p.skipped, username)
		if len(p.skipped) <= 3 {
			p.res.note("%v", err)
		}
		return nil
	}
	p.sent = append(p.sent, profileRow{username: username, fields: object})
	return nil
}

// noteSkipped counts the rows left out, and names some when there are many.
func (p *profileRun) noteSkipped() {
	p.res.Skipped = int64(len(p.skipped))
	if len(p.skipped) > 3 {
		p.res.note("%d rows refused in all (usernames %s)", len(p.skipped), joinShort(p.skipped, 5))
	}
}

// record records the export, what the site was told and what is pending,
// in the file's transaction, and returns the export's id.
func (p *profileRun) record(ctx context.Context, run *ledger.Run, status string) (int64, error) {
	res, file := p.res, p.file
	exportID, err := insertExportRun(ctx, p.tx, exportRow{runID: run.ID, instance: p.site.Name, feed: Profile, full: p.opts.Full,
		status: status, file: file.Name, archive: res.Archive, sum: file.SHA256, bytes: file.Size,
		counts: map[string]any{"rows": res.Rows, "changed": p.changed, "skipped": len(p.skipped), "delivered": res.Delivered,
			"codes_cleared": carried(p.carry, p.cp.clears), "codes_given": carried(p.carry, p.cp.sets)}})
	if err != nil || p.changed == 0 {
		return exportID, err
	}
	if _, err := p.tx.Exec(ctx, `INSERT INTO ctl.published_profile (instance, username, fields, export_id)
		SELECT DISTINCT ON (m.username) $1, m.username, `+p.object+`, $2
		FROM `+ProfileMart+` m `+profileJoins+`
		WHERE m.instance = $1 AND m.username IS NOT NULL AND `+p.filter+` AND `+profileChanged(p.object, p.opts.Full)+` AND NOT m.username = ANY($3)
		ORDER BY m.username, `+p.object+`::text
		ON CONFLICT (instance, username) DO UPDATE
		SET fields = ctl.published_profile.fields || EXCLUDED.fields, export_id = EXCLUDED.export_id`,
		p.site.Name, exportID, nonNil(p.skipped)); err != nil {
		return 0, fmt.Errorf("recording the profile CSV of site %s: %w", p.site.Name, err)
	}
	if err := recordProfilePending(ctx, p.tx, p.site.Name, run.ID, exportID, p.sent, p.actual); err != nil {
		return 0, err
	}
	return exportID, nil
}

func carried(carry bool, n int64) int64 {
	if carry {
		return n
	}
	return 0
}

// checkCSV re-reads a written CSV: every record has the header's width.
func checkCSV(r io.Reader, width int) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = width
	n := 0
	for {
		_, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("re-reading the CSV: %w", err)
		}
		n++
	}
	if n == 0 {
		return errors.New("re-reading the CSV: no header")
	}
	return nil
}
