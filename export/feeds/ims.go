package feeds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/export/deliver"
	"github.com/mimwarehouse/mim/export/guard"
	"github.com/mimwarehouse/mim/export/ims"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/settings"
)

// The marts the IMS feed reads (docs/contracts.md §2).
const (
	MembershipMart = "mart.exp_ims_membership"
	PersonMart     = "mart.exp_ims_person"
)

// learner is the IMS roletype whose active rows count as students.
const learner = "01"

// IMSFileName is the name of a site's IMS file in exports.dir and where it
// is delivered: the site's imsfilelocation must name it.
func IMSFileName(site string) string { return "ims-" + site + ".xml" }

// imsCounts are what a site's IMS delta holds.
type imsCounts struct {
	Target      int64 // valid rows of the new target
	Students    int64 // distinct users with an active Learner row
	Memberships int64 // active rows
	Adds        int64 // new active rows, and suspended ones made active again
	Changes     int64 // active rows whose dates changed
	Same        int64 // unchanged active rows (re-asserted with --full)
	Drops       int64 // published active rows no longer in the target
	Suspends    int64 // published active rows the target keeps suspended
	Forgets     int64 // published suspended rows no longer in the target (nothing to send)
	// Quiet are drops and suspensions of one role of a user who keeps
	// another role in the course: Moodle drops a user's whole IMS
	// enrolment, so they are not sent, only recorded.
	Quiet  int64
	Frozen int64 // published rows in courses whose mappings are all inactive
	// FrozenCourses counts those courses.
	FrozenCourses int64
	Invalid       int64 // mart rows left out: unmapped role, bad status, empty key
	// Resends are pending changes of earlier files (not seen applied in
	// Moodle yet) this file carries again; FrozenPending those of frozen
	// courses, which it does not.
	Resends, FrozenPending int64
}

// imsPlan is a site's IMS delta, measured and guarded, inside the feed's
// transaction (the temporary tables mim_ims_target and mim_ims_delta hold it).
type imsPlan struct {
	site     *Site
	full     bool
	counts   imsCounts
	check    guard.Check
	settings guard.Settings
	losses   []guard.CourseLoss
	held     []guard.CourseLoss
	// heldSample holds the first users of each held course.
	heldSample  map[string][]string
	sampleDrops []string
	notes       []string
}

func (p *imsPlan) heldCourses() []string {
	out := make([]string, len(p.held))
	for i, h := range p.held {
		out[i] = h.Course
	}
	return out
}

// sendable counts the members the file would carry: the delta's and the
// pending ones', less the held courses' drops.
func (p *imsPlan) sendable(ctx context.Context, tx pgx.Tx) (int64, error) {
	var n int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM mim_ims_delta d WHERE `+streamWhere, nonNil(p.heldCourses())).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting the IMS members of site %s: %w", p.site.Name, err)
	}
	return n, nil
}

var errNoMart = errors.New("mart not built")

// planIMS builds the delta of site against ctl.published_membership in tx
// and measures it. It creates temporary tables only, so it runs in a
// dry run's (and the rollover preview's) transaction too.
func planIMS(ctx context.Context, tx pgx.Tx, cfg *Config, site *Site, full bool) (*imsPlan, error) {
	ok, err := martExists(ctx, tx, MembershipMart)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNoMart
	}
	p := &imsPlan{site: site, full: full}
	if p.settings, err = guard.ReadSettings(ctx, tx); err != nil {
		return nil, err
	}
	if err := p.delta(ctx, tx, cfg, imsScope{from: MembershipMart}); err != nil {
		return nil, err
	}
	if err := p.measure(ctx, tx); err != nil {
		return nil, err
	}
	p.held = guard.Hold(p.losses, p.settings.CourseDropPercent)
	if err := p.samples(ctx, tx); err != nil {
		return nil, err
	}
	return p, nil
}

// imsScope is what a delta is computed over: the target relation (the
// mart, or a course preview's evaluation of it) and, for a preview, the one
// course it covers ("" for the whole site).
type imsScope struct {
	from, course string
}

// delta fills the temporary tables mim_ims_target (the target as the feed
// reads it, checked) and mim_ims_delta (its classification against what
// Moodle was told) for the plan's site within scope.
func (p *imsPlan) delta(ctx context.Context, tx pgx.Tx, cfg *Config, scope imsScope) error {
	site := p.site
	names, codes := roleMap(cfg.IMSRoles)
	for _, stmt := range []string{`DROP TABLE IF EXISTS pg_temp.mim_ims_delta`, `DROP TABLE IF EXISTS pg_temp.mim_ims_target`} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("preparing the IMS delta of site %s: %w", site.Name, err)
		}
	}
	// The target, with MIM role names mapped to roletypes by
	// exports.ims_roles (a mart that already holds codes keeps them).
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE mim_ims_target ON COMMIT DROP AS
		SELECT t.course_idnumber::text AS course, t.user_idnumber::text AS usr, t.roletype::text AS raw_role,
		       CASE WHEN t.roletype::text ~ '^0[1-8]$' THEN t.roletype::text ELSE r.code END AS roletype,
		       t.status::int AS status, t.timeframe_begin::date AS tb, t.timeframe_end::date AS te,
		       nullif(t.cohort::text, '') AS cohort
		FROM `+scope.from+` t
		LEFT JOIN unnest($2::text[], $3::text[]) AS r(name, code) ON r.name = t.roletype::text
		WHERE t.instance = $1 AND ($4 = '' OR t.course_idnumber = $4)`, site.Name, names, codes, scope.course); err != nil {
		return fmt.Errorf("reading the IMS target of site %s from %s: %w", site.Name, scope.from, err)
	}
	if err := p.checkTarget(ctx, tx); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `ANALYZE mim_ims_target`); err != nil {
		return fmt.Errorf("preparing the IMS delta of site %s: %w", site.Name, err)
	}
	if _, err := tx.Exec(ctx, deltaSQL, site.Name, p.full, scope.course); err != nil {
		return fmt.Errorf("computing the IMS delta of site %s: %w", site.Name, err)
	}
	return nil
}

// deltaSQL classifies every membership of the target and of what Moodle was
// told, leaving out courses whose mappings are all inactive (frozen):
//
//	add      active in the target, not published active (new, or suspended before)
//	change   active in both, dates differ
//	same     active in both, unchanged (kept only with --full)
//	suspend  published active, suspended in the target
//	drop     published active, gone from the target
//	forget   published suspended, gone from the target (nothing to send)
//
// keeps marks a drop or suspension of a user who keeps another active role
// in the course: Moodle would drop the whole enrolment, so it is not sent.
const deltaSQL = `CREATE TEMP TABLE mim_ims_delta ON COMMIT DROP AS
WITH pub AS (
	SELECT course_idnumber AS course, user_idnumber AS usr, roletype, status::int AS status,
	       timeframe_begin AS tb, timeframe_end AS te
	FROM ctl.published_membership WHERE instance = $1 AND ($3 = '' OR course_idnumber = $3)),
frozen AS (
	SELECT course_idnumber AS course FROM ctl.course_mapping WHERE instance = $1
	GROUP BY 1 HAVING NOT bool_or(active)),
j AS (
	SELECT coalesce(t.course, p.course) AS course, coalesce(t.usr, p.usr) AS usr, coalesce(t.roletype, p.roletype) AS roletype,
	       t.status, t.tb, t.te, t.cohort, p.status AS pstatus, p.tb AS ptb, p.te AS pte
	FROM mim_ims_target t FULL JOIN pub p ON p.course = t.course AND p.usr = t.usr AND p.roletype = t.roletype),
k AS (
	SELECT j.*, CASE
		WHEN pstatus IS NULL THEN CASE WHEN status = 1 THEN 'add' END
		WHEN status IS NULL THEN CASE WHEN pstatus = 1 THEN 'drop' ELSE 'forget' END
		WHEN status = 1 AND pstatus = 0 THEN 'add'
		WHEN status = 0 AND pstatus = 1 THEN 'suspend'
		WHEN status = 1 AND (tb IS DISTINCT FROM ptb OR te IS DISTINCT FROM pte) THEN 'change'
		WHEN status = 1 THEN 'same'
	END AS kind
	FROM j WHERE NOT EXISTS (SELECT 1 FROM frozen f WHERE f.course = j.course))
SELECT k.*, (k.kind IN ('drop', 'suspend') AND EXISTS (
		SELECT 1 FROM mim_ims_target t2 WHERE t2.course = k.course AND t2.usr = k.usr AND t2.status = 1)) AS keeps
FROM k WHERE k.kind IS NOT NULL AND (k.kind <> 'same' OR $2)`

// checkTarget leaves out rows the feed cannot send (and says which) and
// refuses a target with duplicate rows, which would be a broken mart.
func (p *imsPlan) checkTarget(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT CASE
			WHEN course IS NULL OR course = '' OR usr IS NULL OR usr = '' THEN 'an empty course or user idnumber'
			WHEN status IS NULL OR status NOT IN (0, 1) THEN 'status ' || coalesce(status::text, 'NULL') || ' (not 0 or 1)'
			ELSE 'role ' || coalesce(raw_role, 'NULL') || ' (not in exports.ims_roles)' END AS why, count(*)
		FROM mim_ims_target
		WHERE roletype IS NULL OR status IS NULL OR status NOT IN (0, 1) OR coalesce(course, '') = '' OR coalesce(usr, '') = ''
		GROUP BY 1 ORDER BY 2 DESC, 1`)
	if err != nil {
		return fmt.Errorf("checking the IMS target of site %s: %w", p.site.Name, err)
	}
	for rows.Next() {
		var why string
		var n int64
		if err := rows.Scan(&why, &n); err != nil {
			rows.Close()
			return fmt.Errorf("checking the IMS target of site %s: %w", p.site.Name, err)
		}
		p.counts.Invalid += n
		p.notes = append(p.notes, fmt.Sprintf("%s of %s left out: %s", plural(n, "row", "rows"), MembershipMart, why))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("checking the IMS target of site %s: %w", p.site.Name, err)
	}
	if p.counts.Invalid > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM mim_ims_target
			WHERE roletype IS NULL OR status IS NULL OR status NOT IN (0, 1) OR coalesce(course, '') = '' OR coalesce(usr, '') = ''`); err != nil {
			return fmt.Errorf("checking the IMS target of site %s: %w", p.site.Name, err)
		}
	}
	var dups int64
	var example string
	if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(min(course || ', user ' || usr || ', roletype ' || roletype), '')
		FROM (SELECT course, usr, roletype FROM mim_ims_target GROUP BY 1, 2, 3 HAVING count(*) > 1) d`).Scan(&dups, &example); err != nil {
		return fmt.Errorf("checking the IMS target of site %s: %w", p.site.Name, err)
	}
	if dups > 0 {
		return fmt.Errorf("%s holds %s for site %s (e.g. course %s): one row per course, user and role is the contract; the export is not written from a broken mart",
			MembershipMart, plural(dups, "duplicated membership", "duplicated memberships"), p.site.Name, example)
	}
	return nil
}

// measure counts the target and the delta, reads the last successful
// publish and the courses' losses.
func (p *imsPlan) measure(ctx context.Context, tx pgx.Tx) error {
	c := &p.counts
	name := p.site.Name
	if err := tx.QueryRow(ctx, `SELECT count(*), count(DISTINCT usr) FILTER (WHERE status = 1 AND roletype = $1),
			count(*) FILTER (WHERE status = 1) FROM mim_ims_target`, learner).Scan(&c.Target, &c.Students, &c.Memberships); err != nil {
		return fmt.Errorf("counting the IMS target of site %s: %w", name, err)
	}
	if err := tx.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE kind = 'add'), count(*) FILTER (WHERE kind = 'change'), count(*) FILTER (WHERE kind = 'same'),
			count(*) FILTER (WHERE kind = 'drop' AND NOT keeps), count(*) FILTER (WHERE kind = 'suspend' AND NOT keeps),
			count(*) FILTER (WHERE kind = 'forget'), count(*) FILTER (WHERE keeps)
		FROM mim_ims_delta`).Scan(&c.Adds, &c.Changes, &c.Same, &c.Drops, &c.Suspends, &c.Forgets, &c.Quiet); err != nil {
		return fmt.Errorf("counting the IMS delta of site %s: %w", name, err)
	}
	if err := tx.QueryRow(ctx, `SELECT count(DISTINCT p.course_idnumber), count(*) FROM ctl.published_membership p
		WHERE p.instance = $1 AND p.course_idnumber IN (
			SELECT course_idnumber FROM ctl.course_mapping WHERE instance = $1 GROUP BY 1 HAVING NOT bool_or(active))`,
		name).Scan(&c.FrozenCourses, &c.Frozen); err != nil {
		return fmt.Errorf("counting the frozen courses of site %s: %w", name, err)
	}
	if c.Frozen > 0 {
		p.notes = append(p.notes, fmt.Sprintf("%s in %s whose mappings are all inactive left as they are (frozen)",
			plural(c.Frozen, "published membership", "published memberships"), plural(c.FrozenCourses, "course", "courses")))
	}
	// The incumbent's comparison, with what the successful exports told
	// Moodle: the published memberships, counted only in courses that are
	// not frozen now, as the target is. So a night after a global
	// deactivation (or a rollover) compares active courses with active
	// courses and is not refused for drops it does not make, and a mapping
	// activated weeks later is measured against its own course only.
	p.check = guard.Check{Guard: guard.Threshold, Instance: name, Limit: p.settings.ThresholdPercent}
	var published bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM ctl.export_run
		WHERE instance = $1 AND feed IN ('ims', 'flatfile') AND status IN ('published', 'empty'))`, name).Scan(&published); err != nil {
		return fmt.Errorf("reading the last successful IMS export of site %s: %w", name, err)
	}
	p.check.First = !published
	var prevStudents, prevMembers int64
	if err := tx.QueryRow(ctx, `SELECT count(DISTINCT p.user_idnumber) FILTER (WHERE p.roletype = $2), count(*)
		FROM ctl.published_membership p
		WHERE p.instance = $1 AND p.status = 1 AND p.course_idnumber NOT IN (
			SELECT course_idnumber FROM ctl.course_mapping WHERE instance = $1 GROUP BY 1 HAVING NOT bool_or(active))`,
		name, learner).Scan(&prevStudents, &prevMembers); err != nil {
		return fmt.Errorf("counting the published memberships of site %s: %w", name, err)
	}
	p.check.Measures = []guard.Measure{
		{Subject: "active_students", Previous: prevStudents, Current: c.Students},
		{Subject: "active_memberships", Previous: prevMembers, Current: c.Memberships},
	}
	rows, err := tx.Query(ctx, `
		WITH d AS (SELECT course, count(*) FILTER (WHERE roletype = $2) AS drops
		           FROM mim_ims_delta WHERE kind IN ('drop', 'suspend') GROUP BY course)
		SELECT d.course, (SELECT count(*) FROM ctl.published_membership p
		                  WHERE p.instance = $1 AND p.course_idnumber = d.course AND p.roletype = $2 AND p.status = 1), d.drops
		FROM d ORDER BY d.course`, name, learner)
	if err != nil {
		return fmt.Errorf("measuring the courses' losses on site %s: %w", name, err)
	}
	p.losses, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (guard.CourseLoss, error) {
		var l guard.CourseLoss
		err := r.Scan(&l.Course, &l.Students, &l.Drops)
		return l, err
	})
	if err != nil {
		return fmt.Errorf("measuring the courses' losses on site %s: %w", name, err)
	}
	return nil
}

// samples lists the first drops that would go out, and the first of each
// held course.
func (p *imsPlan) samples(ctx context.Context, tx pgx.Tx) error {
	held := p.heldCourses()
	rows, err := tx.Query(ctx, `SELECT course, usr, roletype, kind FROM mim_ims_delta
		WHERE kind IN ('drop', 'suspend') AND NOT keeps AND NOT course = ANY($1)
		ORDER BY course, usr, roletype LIMIT 10`, held)
	if err != nil {
		return fmt.Errorf("listing the IMS drops of site %s: %w", p.site.Name, err)
	}
	for rows.Next() {
		var course, usr, role, kind string
		if err := rows.Scan(&course, &usr, &role, &kind); err != nil {
			rows.Close()
			return err
		}
		p.sampleDrops = append(p.sampleDrops, describeDrop(course, usr, role, kind))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("listing the IMS drops of site %s: %w", p.site.Name, err)
	}
	if len(held) == 0 {
		return nil
	}
	p.heldSample = map[string][]string{}
	rows, err = tx.Query(ctx, `SELECT course, usr, roletype, kind FROM (
			SELECT *, row_number() OVER (PARTITION BY course ORDER BY usr, roletype) AS n
			FROM mim_ims_delta WHERE kind IN ('drop', 'suspend') AND course = ANY($1)) d
		WHERE n <= 5 ORDER BY course, usr, roletype`, held)
	if err != nil {
		return fmt.Errorf("listing the held drops of site %s: %w", p.site.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var course, usr, role, kind string
		if err := rows.Scan(&course, &usr, &role, &kind); err != nil {
			return err
		}
		p.heldSample[course] = append(p.heldSample[course], describeDrop(course, usr, role, kind))
	}
	return rows.Err()
}

func describeDrop(course, usr, role, kind string) string {
	s := fmt.Sprintf("%s: %s (roletype %s)", course, usr, role)
	if kind == "suspend" {
		s += ", suspended"
	}
	return s
}

// heldRows counts the delta rows of the held courses that are not sent.
func (p *imsPlan) heldRows(ctx context.Context, tx pgx.Tx) (int64, error) {
	if len(p.held) == 0 {
		return 0, nil
	}
	var n int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM mim_ims_delta
		WHERE kind IN ('drop', 'suspend') AND NOT keeps AND course = ANY($1)`, p.heldCourses()).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting the held drops of site %s: %w", p.site.Name, err)
	}
	return n, nil
}

// roleMap turns exports.ims_roles into parallel arrays, sorted for a
// stable statement.
func roleMap(m map[string]string) (names, codes []string) {
	names = make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	codes = make([]string, len(names))
	for i, n := range names {
		codes[i] = m[n]
	}
	return names, codes
}

// fill copies the plan's figures into a Result.
func (p *imsPlan) fill(res *Result, heldRows int64) {
	c := p.counts
	res.Rows = c.Target
	res.Adds, res.Changes = c.Adds, c.Changes
	res.Drops = c.Drops + c.Suspends - heldRows
	res.Held = heldRows
	res.HeldCourses = p.held
	res.SampleDrops = p.sampleDrops
	res.Notes = append(res.Notes, p.notes...)
	if c.Same > 0 {
		res.note("%s re-asserted (--full)", plural(c.Same, "unchanged membership", "unchanged memberships"))
	}
	if c.Quiet > 0 {
		res.note("%s of users who keep another role in the course recorded but not sent (Moodle would drop the whole enrolment)",
			plural(c.Quiet, "role drop", "role drops"))
	}
}

// holdDecisions describes the per-course holds and what became of them.
func (p *imsPlan) holdDecisions(decision string) []string {
	var out []string
	for _, h := range p.held {
		out = append(out, fmt.Sprintf("%s: %s %s, course %s would lose %d of its %d students (%.0f%% > %d%%)",
			guard.CourseDrop, plural(h.Drops, "drop", "drops"), decision, h.Course, h.Drops, h.Students, h.Percent(), p.settings.CourseDropPercent))
	}
	return out
}

// runIMS runs the IMS feed of one site.
func (x *Exporter) runIMS(ctx context.Context, run *ledger.Run, site *Site, opts Options, res *Result) error {
	return x.runEnrolment(ctx, run, site, opts, res, IMS)
}

// runEnrolment runs a site's enrolment feed, IMS Enterprise or the flat
// file: one plan (the delta against ctl.published_membership), one set of
// guards, one published state; only the file written differs.
func (x *Exporter) runEnrolment(ctx context.Context, run *ledger.Run, site *Site, opts Options, res *Result, feed Feed) error {
	tx, err := x.begin(ctx)
	if err != nil {
		return err
	}
	defer rollback(ctx, tx)
	// What Moodle was seen to apply of the earlier files is no longer
	// pending; the rest goes into this file again.
	names, codes := roleMap(x.cfg.IMSRoles)
	obs, actual, err := reconcileIMS(ctx, tx, site.Name, names, codes)
	if err != nil {
		return err
	}
	p, err := planIMS(ctx, tx, x.cfg, site, opts.Full)
	if errors.Is(err, errNoMart) {
		res.Status = StatusSkipped
		res.note("%s has not been built yet (run mim transform)", MembershipMart)
		return nil
	}
	if err != nil {
		return err
	}
	if p.counts.Resends, p.counts.FrozenPending, err = addResends(ctx, tx, site.Name); err != nil {
		return err
	}
	heldRows, err := p.heldRows(ctx, tx)
	if err != nil {
		return err
	}
	p.fill(res, heldRows)
	if err := x.notePending(ctx, tx, site.Name, IMS, obs, p.counts.Resends, p.counts.FrozenPending, res); err != nil {
		return err
	}

	if opts.DryRun {
		res.Status = StatusDryRun
		res.Decisions = append(res.Decisions, p.check.Describe(wouldDecide(p.check, p.settings.Override)))
		res.Decisions = append(res.Decisions, p.holdDecisions(wouldHold(p.settings.CourseDropOverride))...)
		return nil
	}

	// The threshold, decided inside the transaction: an override is spent
	// here and the reset commits with the publish, or not at all.
	decision, err := p.check.DecideIn(ctx, tx, run.ID, x.by)
	if err != nil {
		return err
	}
	res.Decisions = append(res.Decisions, p.check.Describe(decision))
	if decision == guard.Refused {
		rollback(ctx, tx)
		return x.refuse(ctx, run.ID, p.check, feed, p.settings, res)
	}
	// The courses' holds: course_drop_override, when armed, sends their
	// drops this once.
	holdDecision := guard.Held
	if len(p.held) > 0 {
		used, err := settings.TakeOneShot(ctx, tx, guard.OverrideOf(guard.CourseDrop), run.ID, x.by)
		if err != nil {
			return err
		}
		if used {
			holdDecision = guard.Overridden
		}
	}
	res.Decisions = append(res.Decisions, p.holdDecisions(holdDecision)...)
	released := p.held
	if holdDecision == guard.Overridden {
		p.held, heldRows = nil, 0
		res.Drops += res.Held
		res.Held, res.HeldCourses = 0, nil
	}

	// Write, check, archive and deliver the file; the published state
	// moves only after that, in this transaction.
	skipped := &skipSet{}
	var file deliver.File
	sendable, err := p.sendable(ctx, tx)
	if err != nil {
		return err
	}
	wrote := sendable > 0
	var persons int
	if feed == IMS && site.IMSPersons {
		if persons, err = countPersons(ctx, tx, site.Name); err != nil {
			return err
		}
		wrote = wrote || persons > 0
	}
	if wrote {
		if feed == Flatfile {
			file, err = x.writeFlatfile(ctx, tx, run.ID, p, skipped, res)
		} else {
			file, err = x.writeIMS(ctx, tx, run.ID, p, opts.Full, skipped, res)
		}
		if err != nil {
			return err
		}
		if err := x.publishFile(ctx, run.ID, site.Name, feed, file, res); err != nil {
			return err
		}
	}
	status := StatusPublished
	if !wrote {
		status = StatusEmpty
		res.note("nothing to tell Moodle: no file written, the last one stays")
	}
	students, members := p.counts.Students, p.counts.Memberships
	exportID, err := insertExportRun(ctx, tx, exportRow{runID: run.ID, instance: site.Name, feed: feed, full: opts.Full,
		status: status, file: file.Name, archive: res.Archive, sum: file.SHA256, bytes: file.Size,
		students: &students, members: &members, counts: map[string]any{
			"target": p.counts.Target, "adds": p.counts.Adds, "changes": p.counts.Changes, "same": p.counts.Same,
			"drops": p.counts.Drops, "suspends": p.counts.Suspends, "forgets": p.counts.Forgets, "quiet": p.counts.Quiet,
			"held": heldRows, "held_courses": len(p.held), "frozen": p.counts.Frozen, "invalid": p.counts.Invalid,
			"skipped": skipped.n, "persons": persons, "delivered": res.Delivered, "resends": p.counts.Resends,
			"confirmed": obs.Confirmed}})
	if err != nil {
		return err
	}
	if err := applyIMS(ctx, tx, site.Name, exportID, p.heldCourses(), skipped); err != nil {
		return err
	}
	if err := recordIMSPending(ctx, tx, site.Name, run.ID, exportID, p.heldCourses(), skipped, actual); err != nil {
		return err
	}
	var notify []int64
	id, err := guard.Record(ctx, tx, guard.CheckEvent(run.ID, p.check, decision, string(feed)))
	if err != nil {
		return err
	}
	if decision == guard.Overridden {
		notify = append(notify, id)
	}
	for _, h := range released {
		id, err := guard.Record(ctx, tx, guard.HoldEvent(run.ID, site.Name, h, p.settings.CourseDropPercent, p.heldSample[h.Course], holdDecision))
		if err != nil {
			return err
		}
		notify = append(notify, id)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("recording the IMS export of site %s: %w", site.Name, err)
	}
	res.Status, res.ExportID = status, exportID
	if len(notify) > 0 {
		x.mailPublished(ctx, p, decision, released, holdDecision, notify, res)
	}
	return nil
}

// wouldHold is a dry run's word for the courses' holds.
func wouldHold(override bool) string {
	if override {
		return "would send once (course_drop_override is armed)"
	}
	return "would hold"
}

// wouldDecide is a dry run's decision: nothing is spent.
func wouldDecide(c guard.Check, override bool) string {
	d := c.Decide(override)
	if d == guard.Overridden {
		return "would pass once (threshold_override is set)"
	}
	if d == guard.Refused {
		return "would be refused"
	}
	return "would pass"
}

// skipSet is the members the Writer refused: they stay as published.
// Every one is named (in the feed's ledger step, Result.LeftOut), not only
// the first.
type skipSet struct {
	courses, users, roles []string
	n                     int64
	all                   []string
}

func (s *skipSet) add(course, usr, role string, err error) {
	s.courses, s.users, s.roles = append(s.courses, course), append(s.users, usr), append(s.roles, role)
	s.n++
	s.all = append(s.all, err.Error())
}

// streamWhere selects the delta's lines to send ($1: the held courses):
// changes and pending changes sent again, but not quiet drops, nor drops of
// held courses.
const streamWhere = `d.kind IN ('add', 'change', 'same', 'suspend', 'drop', 'resend') AND NOT d.keeps
  AND NOT ((d.kind IN ('drop', 'suspend') OR d.kind = 'resend' AND d.status = 0) AND d.course = ANY($1))`

// streamSQL reads the members to send, course by course.
const streamSQL = `SELECT d.course, d.usr, d.roletype, d.kind, coalesce(d.status, 0), coalesce(d.tb, d.ptb), coalesce(d.te, d.pte),
	coalesce(d.cohort, '')
FROM mim_ims_delta d
WHERE ` + streamWhere + `
ORDER BY d.course, d.usr, d.roletype`

// writeIMS streams the delta from tx into the site's file.
func (x *Exporter) writeIMS(ctx context.Context, tx pgx.Tx, runID int64, p *imsPlan, full bool, skipped *skipSet, res *Result) (deliver.File, error) {
	site := p.site
	typ := "delta"
	if full {
		typ = "full"
	}
	var stats ims.Stats
	write := func(w io.Writer) error {
		iw := ims.NewWriter(w)
		if err := iw.WriteProperties(ims.Properties{Target: site.IMSTarget, DataSource: "MIM run " + strconv.FormatInt(runID, 10),
			Type: typ, DateTime: x.now()}); err != nil {
			return err
		}
		if site.IMSPersons {
			if err := writePersons(ctx, tx, iw, site.Name, res); err != nil {
				return err
			}
		}
		if err := streamMembers(ctx, tx, iw, p.heldCourses(), skipped, x.afterMember); err != nil {
			return err
		}
		if err := iw.Close(); err != nil {
			return err
		}
		stats = iw.Stats()
		return nil
	}
	verify := func(r io.Reader) error {
		sum, err := ims.Validate(r)
		if err != nil {
			return err
		}
		if !sum.HasTarget(site.IMSTarget) {
			return fmt.Errorf("the file does not name the site's target %q", site.IMSTarget)
		}
		if sum.Members != stats.Members || sum.Drops != stats.Drops || sum.Persons != stats.Persons {
			return fmt.Errorf("the file holds %d members (%d drops) and %d persons, the writer wrote %d (%d) and %d",
				sum.Members, sum.Drops, sum.Persons, stats.Members, stats.Drops, stats.Persons)
		}
		return nil
	}
	f, err := deliver.WriteFile(ctx, x.siteFile(IMSFileName(site.Name)), write, deliver.Verify(verify))
	if err != nil {
		return f, fmt.Errorf("writing the IMS file of site %s: %w", site.Name, err)
	}
	if skipped.n > 0 {
		res.Skipped = skipped.n
		res.LeftOut = append(res.LeftOut, skipped.all...)
		res.note("%s refused by the writer and left as published (every one is listed in left_out), e.g. %s",
			plural(skipped.n, "member", "members"), joinShort(skipped.all, 3))
	}
	return f, nil
}

// deltaMember is one membership line of the delta.
type deltaMember struct {
	course string
	m      ims.Member
}

// streamMembers writes the memberships from the delta, one course at a
// time, as the rows arrive.
func streamMembers(ctx context.Context, tx pgx.Tx, iw *ims.Writer, held []string, skipped *skipSet, after func(int) error) error {
	each := func(fn func(deltaMember) error) error { return scanDelta(ctx, tx, held, fn) }
	if err := writeMembers(iw, each, skipped, after); err != nil {
		return err
	}
	return ctx.Err()
}

// scanDelta reads the delta's lines to send, ordered by course, and passes
// each to fn.
func scanDelta(ctx context.Context, tx pgx.Tx, held []string, fn func(deltaMember) error) error {
	rows, err := tx.Query(ctx, streamSQL, nonNil(held))
	if err != nil {
		return fmt.Errorf("reading the IMS delta: %w", err)
	}
	defer rows.Close()
	var (
		course, usr, role, kind, cohort string
		status                          int
		tb, te                          *time.Time
	)
	for rows.Next() {
		if err := rows.Scan(&course, &usr, &role, &kind, &status, &tb, &te, &cohort); err != nil {
			return fmt.Errorf("reading the IMS delta: %w", err)
		}
		active := kind == "add" || kind == "change" || kind == "same" || kind == "resend" && status == 1
		m := ims.Member{IDNumber: usr, RoleType: role, Active: active, Cohort: cohort}
		if tb != nil {
			m.Begin = ims.DateOf(*tb)
		}
		if te != nil {
			m.LastDay = ims.DateOf(*te)
		}
		if err := fn(deltaMember{course: course, m: m}); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading the IMS delta: %w", err)
	}
	return nil
}

// writeMembers writes the members each passes on (ordered by course) into
// one <membership> per course. A course or member the writer refuses is
// added to skipped and left out; after, if set, is called with the number
// of members written so far.
func writeMembers(iw *ims.Writer, each func(func(deltaMember) error) error, skipped *skipSet, after func(int) error) error {
	var (
		cur              string
		open, skipCourse bool
		first            = true
		courseErr        error
		n                int
	)
	err := each(func(d deltaMember) error {
		if first || d.course != cur {
			first = false
			if open {
				if err := iw.EndMembership(); err != nil {
					return err
				}
				open = false
			}
			cur, skipCourse = d.course, false
			if err := iw.BeginMembership(d.course); err != nil {
				if !ims.IsFieldError(err) {
					return err
				}
				skipCourse, courseErr = true, err
			} else {
				open = true
			}
		}
		if skipCourse {
			skipped.add(d.course, d.m.IDNumber, d.m.RoleType, courseErr)
			return nil
		}
		if err := iw.WriteMember(d.m); err != nil {
			if !ims.IsFieldError(err) {
				return err
			}
			skipped.add(d.course, d.m.IDNumber, d.m.RoleType, err)
			return nil
		}
		n++
		if after != nil {
			return after(n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if open {
		return iw.EndMembership()
	}
	return nil
}

func countPersons(ctx context.Context, tx pgx.Tx, instance string) (int, error) {
	ok, err := martExists(ctx, tx, PersonMart)
	if err != nil || !ok {
		return 0, err
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+PersonMart+` WHERE instance = $1`, instance).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting the IMS persons of site %s: %w", instance, err)
	}
	return n, nil
}

// writePersons writes a <person> for every row of the person mart.
func writePersons(ctx context.Context, tx pgx.Tx, iw *ims.Writer, instance string, res *Result) error {
	ok, err := martExists(ctx, tx, PersonMart)
	if err != nil || !ok {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT coalesce(user_idnumber, ''), coalesce(username, ''), coalesce(auth, ''),
			coalesce(given, ''), coalesce(family, ''), coalesce(email, '')
		FROM `+PersonMart+` WHERE instance = $1 ORDER BY user_idnumber`, instance)
	if err != nil {
		return fmt.Errorf("reading the IMS persons of site %s: %w", instance, err)
	}
	defer rows.Close()
	var refused []string
	for rows.Next() {
		var p ims.Person
		if err := rows.Scan(&p.IDNumber, &p.Username, &p.Auth, &p.Given, &p.Family, &p.Email); err != nil {
			return fmt.Errorf("reading the IMS persons of site %s: %w", instance, err)
		}
		if err := iw.WritePerson(p); err != nil {
			if !ims.IsFieldError(err) {
				return err
			}
			refused = append(refused, err.Error())
		}
	}
	if len(refused) > 0 {
		res.LeftOut = append(res.LeftOut, refused...)
		res.note("%s refused by the writer and left out (every one is listed in left_out), e.g. %s",
			plural(int64(len(refused)), "person", "persons"), joinShort(refused, 3))
	}
	return rows.Err()
}

// applyIMS moves ctl.published_membership to what the file told Moodle:
// drops and forgotten rows go, adds, changes and suspensions are written;
// held courses' drops and the members the writer refused stay as they were.
func applyIMS(ctx context.Context, tx pgx.Tx, instance string, exportID int64, held []string, s *skipSet) error {
	courses, users, roles := nonNil(s.courses), nonNil(s.users), nonNil(s.roles)
	const notSkipped = `NOT EXISTS (SELECT 1 FROM unnest($3::text[], $4::text[], $5::text[]) s(c, u, r)
		WHERE s.c = d.course AND s.u = d.usr AND s.r = d.roletype)`
	if _, err := tx.Exec(ctx, `DELETE FROM ctl.published_membership p USING mim_ims_delta d
		WHERE p.instance = $1 AND p.course_idnumber = d.course AND p.user_idnumber = d.usr AND p.roletype = d.roletype
		  AND (d.kind = 'forget' OR (d.kind = 'drop' AND NOT d.course = ANY($2)))
		  AND `+notSkipped, instance, nonNil(held), courses, users, roles); err != nil {
		return fmt.Errorf("recording the IMS drops of site %s: %w", instance, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ctl.published_membership
			(instance, course_idnumber, user_idnumber, roletype, status, timeframe_begin, timeframe_end, export_id)
		SELECT $1, d.course, d.usr, d.roletype, d.status, d.tb, d.te, $6 FROM mim_ims_delta d
		WHERE (d.kind IN ('add', 'change') OR (d.kind = 'suspend' AND NOT d.course = ANY($2)))
		  AND `+notSkipped+`
		ON CONFLICT (instance, course_idnumber, user_idnumber, roletype) DO UPDATE
		SET status = EXCLUDED.status, timeframe_begin = EXCLUDED.timeframe_begin,
		    timeframe_end = EXCLUDED.timeframe_end, export_id = EXCLUDED.export_id`,
		instance, nonNil(held), courses, users, roles, exportID); err != nil {
		return fmt.Errorf("recording the IMS memberships of site %s: %w", instance, err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
