package feeds

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Published is not applied. Moodle reads the IMS file and the profile CSV
// when its own task runs, so a file replaced before that (a re-run within
// the hour, the site's cron down for a night) or rejected (an unknown
// profile field aborts tool_uploaduser) would lose its changes for good if
// MIM took "written" for "applied". So every change a file carries is
// pending (ctl.pending_membership, ctl.pending_profile) until an extract of
// the site newer than the file shows it; every file carries every pending
// change again; a later change of the same row replaces it; and a change
// that several extracts have not shown is reported with its likely cause.
// What Moodle has that MIM never sent (a manual enrolment) is not MIM's:
// only MIM's own changes are pending.

// SettingPendingNights is the setting that says after how many extracts
// that did not show a change it is reported.
const SettingPendingNights = "pending_alert_nights"

// Models the observations come from, by their transform step names.
const (
	actualMart    = "mart.fct_enrolment_actual"
	userFieldsStg = "stg.moodle_user_field"
)

// observed is what one reconciliation of a site's pending changes found.
type observed struct {
	Confirmed int64 // seen applied: no longer pending
	Missed    int64 // an extract newer than their file did not show them
	Waiting   int64 // no extract newer than their file yet
	Dropped   int64 // no longer wanted (profile rows of accounts gone from the mart)
}

// builtRun is the last run whose transform built model and committed, or
// 0: an observation from a mart built before the extract is stale.
func builtRun(ctx context.Context, q warehouse.Querier, model string) (int64, error) {
	return ledger.LastStepSucceeded(ctx, q, "transform", model)
}

// settle applies the verdicts of mim_pending_check (key columns, eligible,
// seen, kind, first_sent, obs_run, was_there) to table: changes seen go,
// the others that an extract newer than their file did not show count a
// miss (once per extract). read_through moves to the first_sent of the
// newest change seen applied that Moodle did not show already when it was
// sent; changes that cannot be seen by themselves (kind 'change': dates)
// count as applied when the enrolment is there and a file they were in was
// read.
func settle(ctx context.Context, tx pgx.Tx, table, feed, instance string, keys []string) (observed, error) {
	var o observed
	on := make([]string, len(keys))
	for i, k := range keys {
		on[i] = "p." + k + " = c." + k
	}
	match := strings.Join(on, " AND ")
	var through *time.Time
	if err := tx.QueryRow(ctx, `SELECT max(first_sent) FROM mim_pending_check WHERE eligible AND seen AND kind <> 'change' AND NOT was_there`).Scan(&through); err != nil {
		return o, fmt.Errorf("settling the pending %s of site %s: %w", feed, instance, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ctl.feed_observed AS f (instance, feed, read_through) VALUES ($1, $2, $3)
		ON CONFLICT (instance, feed) DO UPDATE SET read_through = greatest(f.read_through, EXCLUDED.read_through)`,
		instance, feed, through); err != nil {
		return o, fmt.Errorf("recording what site %s showed of its %s: %w", instance, feed, err)
	}
	tag, err := tx.Exec(ctx, `DELETE FROM `+table+` p USING mim_pending_check c
		WHERE p.instance = $1 AND `+match+` AND c.eligible AND c.seen
		  AND (c.kind <> 'change' OR c.first_sent <= (SELECT read_through FROM ctl.feed_observed WHERE instance = $1 AND feed = $2))`,
		instance, feed)
	if err != nil {
		return o, fmt.Errorf("settling the pending %s of site %s: %w", feed, instance, err)
	}
	o.Confirmed = tag.RowsAffected()
	if o.Confirmed > 0 {
		if _, err := tx.Exec(ctx, `UPDATE ctl.feed_observed SET last_confirmed = now(), confirmed = confirmed + $3
			WHERE instance = $1 AND feed = $2`, instance, feed, o.Confirmed); err != nil {
			return o, fmt.Errorf("recording what site %s showed of its %s: %w", instance, feed, err)
		}
	}
	tag, err = tx.Exec(ctx, `UPDATE `+table+` p SET misses = p.misses + 1, checked_run = c.obs_run
		FROM mim_pending_check c
		WHERE p.instance = $1 AND `+match+` AND c.eligible AND p.checked_run IS DISTINCT FROM c.obs_run`, instance)
	if err != nil {
		return o, fmt.Errorf("settling the pending %s of site %s: %w", feed, instance, err)
	}
	o.Missed = tag.RowsAffected()
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+table+` p WHERE p.instance = $1 AND p.checked_run IS NULL`,
		instance).Scan(&o.Waiting); err != nil {
		return o, fmt.Errorf("counting the pending %s of site %s: %w", feed, instance, err)
	}
	return o, nil
}

// reconcileIMS settles a site's pending memberships against what Moodle
// has (mart.fct_enrolment_actual, through mim_ims_actual), where the
// course's enrolments were read by an extract newer than the last file that
// carried them and the mart was built from it. It reports whether the mart
// exists (mim_ims_actual then holds it for recordIMSPending).
func reconcileIMS(ctx context.Context, tx pgx.Tx, instance string, roleNames, roleCodes []string) (observed, bool, error) {
	ok, err := loadActual(ctx, tx, instance, roleNames, roleCodes)
	if err != nil || !ok {
		return observed{}, false, err
	}
	built, err := builtRun(ctx, tx, actualMart)
	if err != nil {
		return observed{}, true, err
	}
	// Temporary tables with fresh statistics: a plan from stale ones
	// (a pending table just filled) loops over every course per row.
	for _, st := range []struct {
		sql  string
		args []any
	}{
		{`DROP TABLE IF EXISTS pg_temp.mim_obs_course`, nil},
		{`CREATE TEMP TABLE mim_obs_course ON COMMIT DROP AS
		SELECT c.idnumber, s.complete_run FROM stg.moodle_course c
		JOIN raw.scope_read s ON s.source = 'moodle' AND s.instance = c.instance AND s.entity = 'enrolments'
		                     AND s.scope = c.course_id::text
		WHERE c.instance = $1 AND c.idnumber IS NOT NULL AND s.complete_run IS NOT NULL AND s.complete_run <= $2`, []any{instance, built}},
		{`ANALYZE mim_obs_course`, nil},
		{`ANALYZE ctl.pending_membership`, nil},
		{`DROP TABLE IF EXISTS pg_temp.mim_pending_check`, nil},
		{`CREATE TEMP TABLE mim_pending_check ON COMMIT DROP AS
		SELECT p.course_idnumber, p.user_idnumber, p.roletype, p.kind, p.first_sent, p.was_there, o.complete_run AS obs_run,
		       o.complete_run IS NOT NULL AND o.complete_run > p.last_run_id AS eligible,
		       ` + membershipSeen("p.status", "p.was_there") + ` AS seen
		FROM ctl.pending_membership p
		LEFT JOIN mim_obs_course o ON o.idnumber = p.course_idnumber
		LEFT JOIN mim_ims_actual x ON x.course = p.course_idnumber AND x.usr = p.user_idnumber AND x.roletype = p.roletype
		WHERE p.instance = $1`, []any{instance}},
		{`ANALYZE mim_pending_check`, nil},
	} {
		if _, err := tx.Exec(ctx, st.sql, st.args...); err != nil {
			return observed{}, true, fmt.Errorf("comparing the pending memberships of site %s with Moodle: %w", instance, err)
		}
	}
	o, err := settle(ctx, tx, "ctl.pending_membership", string(IMS), instance,
		[]string{"course_idnumber", "user_idnumber", "roletype"})
	return o, true, err
}

// loadActual puts in mim_ims_actual (course, usr, roletype, active) what
// Moodle has, as mart.fct_enrolment_actual shows it: each user in each
// course by the roletypes their roles stand for (exports.ims_roles), and
// whether an enrolment with one of them is active. It reports whether the
// mart exists.
func loadActual(ctx context.Context, tx pgx.Tx, instance string, roleNames, roleCodes []string) (bool, error) {
	ok, err := martExists(ctx, tx, actualMart)
	if err != nil || !ok {
		return false, err
	}
	for _, stmt := range []string{`DROP TABLE IF EXISTS pg_temp.mim_ims_actual`,
		`CREATE TEMP TABLE mim_ims_actual ON COMMIT DROP AS
		SELECT a.course_idnumber AS course, a.user_idnumber AS usr, r.code AS roletype, bool_or(NOT a.suspended) AS active
		FROM ` + actualMart + ` a JOIN unnest($2::text[], $3::text[]) r(name, code) ON r.name = a.role_shortname
		WHERE a.instance = $1 AND a.course_idnumber IS NOT NULL AND a.user_idnumber IS NOT NULL
		GROUP BY 1, 2, 3`,
		`ANALYZE mim_ims_actual`} {
		var args []any
		if strings.Contains(stmt, "$1") {
			args = []any{instance, roleNames, roleCodes}
		}
		if _, err := tx.Exec(ctx, stmt, args...); err != nil {
			return true, fmt.Errorf("reading what site %s has from %s: %w", instance, actualMart, err)
		}
	}
	return true, nil
}

// membershipSeen is the SQL of whether Moodle has a membership as the file
// says, x being its row of mim_ims_actual: status 1, the user holds a role
// the roletype stands for in the course; status 0, no longer, or only
// suspended when it was active when the drop was sent (wasThere false: an
// enrolment outside its dates is suspended too, dropped or not).
func membershipSeen(status, wasThere string) string {
	return `CASE WHEN ` + status + ` = 1 THEN x.course IS NOT NULL
		ELSE x.course IS NULL OR NOT ` + wasThere + ` AND NOT x.active END`
}

// addResends puts the site's pending memberships that this delta does not
// replace into mim_ims_delta as kind 'resend', the values of their last
// file, leaving out frozen courses (nothing of theirs is sent). It returns
// how many and how many were left out as frozen.
func addResends(ctx context.Context, tx pgx.Tx, instance string) (resends, frozen int64, err error) {
	tag, err := tx.Exec(ctx, `INSERT INTO mim_ims_delta (course, usr, roletype, status, tb, te, cohort, kind, keeps)
		SELECT p.course_idnumber, p.user_idnumber, p.roletype, p.status, p.timeframe_begin, p.timeframe_end, p.cohort, 'resend', false
		FROM ctl.pending_membership p
		WHERE p.instance = $1
		  AND NOT EXISTS (SELECT 1 FROM mim_ims_delta d WHERE d.course = p.course_idnumber AND d.usr = p.user_idnumber AND d.roletype = p.roletype)
		  AND p.course_idnumber NOT IN (SELECT course_idnumber FROM ctl.course_mapping WHERE instance = $1
		                                GROUP BY 1 HAVING NOT bool_or(active))`, instance)
	if err != nil {
		return 0, 0, fmt.Errorf("adding the pending memberships of site %s to its file: %w", instance, err)
	}
	if _, err := tx.Exec(ctx, `ANALYZE mim_ims_delta`); err != nil {
		return 0, 0, fmt.Errorf("adding the pending memberships of site %s to its file: %w", instance, err)
	}
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM ctl.pending_membership p WHERE p.instance = $1
		AND p.course_idnumber IN (SELECT course_idnumber FROM ctl.course_mapping WHERE instance = $1 GROUP BY 1 HAVING NOT bool_or(active))`,
		instance).Scan(&frozen); err != nil {
		return 0, 0, fmt.Errorf("counting the frozen pending memberships of site %s: %w", instance, err)
	}
	return tag.RowsAffected(), frozen, nil
}

// sentDelta is the condition of a mim_ims_delta row d that went into the
// file: not a quiet drop, not a held course's drop, not refused by the
// writer ($2 the held courses; $3, $4, $5 the refused members).
const sentDelta = `NOT d.keeps
	AND NOT ((d.kind IN ('drop', 'suspend') OR d.kind = 'resend' AND d.status = 0) AND d.course = ANY($2))
	AND NOT EXISTS (SELECT 1 FROM unnest($3::text[], $4::text[], $5::text[]) s(c, u, r)
		WHERE s.c = d.course AND s.u = d.usr AND s.r = d.roletype)`

// recordIMSPending makes what the file carried pending: a new change
// replaces what was pending for its row (and starts its count again); a
// re-sent one counts the send. A role drop not sent because the user keeps
// another role (Moodle would drop the whole enrolment) ends what was
// pending for that role; a held drop or a member the writer refused leaves
// it pending, to be sent once the hold ends.
func recordIMSPending(ctx context.Context, tx pgx.Tx, instance string, runID, exportID int64, held []string, s *skipSet,
	actual bool) error {
	sent := []any{instance, nonNil(held), nonNil(s.courses), nonNil(s.users), nonNil(s.roles)}
	// Whether Moodle shows it already, as the last extract read it
	// (mim_ims_actual, when the mart exists).
	wasThere, actualJoin := "false", ""
	if actual {
		wasThere = membershipSeen("CASE WHEN d.kind IN ('add', 'change') THEN 1 ELSE 0 END", "false")
		actualJoin = "LEFT JOIN mim_ims_actual x ON x.course = d.course AND x.usr = d.usr AND x.roletype = d.roletype"
	}
	for _, st := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM ctl.pending_membership p USING mim_ims_delta d
		WHERE p.instance = $1 AND p.course_idnumber = d.course AND p.user_idnumber = d.usr AND p.roletype = d.roletype
		  AND d.kind IN ('drop', 'suspend') AND d.keeps`, sent[:1]},
		{`INSERT INTO ctl.pending_membership AS p (instance, course_idnumber, user_idnumber, roletype, kind, status,
			timeframe_begin, timeframe_end, cohort, first_export_id, last_export_id, last_run_id, was_there)
		SELECT $1, d.course, d.usr, d.roletype, d.kind, CASE WHEN d.kind IN ('add', 'change') THEN 1 ELSE 0 END,
			coalesce(d.tb, d.ptb), coalesce(d.te, d.pte), d.cohort, $6, $6, $7, ` + wasThere + `
		FROM mim_ims_delta d ` + actualJoin + ` WHERE d.kind IN ('add', 'change', 'suspend', 'drop') AND ` + sentDelta + `
		ON CONFLICT (instance, course_idnumber, user_idnumber, roletype) DO UPDATE
		SET kind = EXCLUDED.kind, status = EXCLUDED.status, timeframe_begin = EXCLUDED.timeframe_begin,
		    timeframe_end = EXCLUDED.timeframe_end, cohort = EXCLUDED.cohort, first_export_id = EXCLUDED.first_export_id,
		    last_export_id = EXCLUDED.last_export_id, first_sent = now(), last_run_id = EXCLUDED.last_run_id,
		    sends = 1, misses = 0, checked_run = NULL, was_there = EXCLUDED.was_there`,
			append(slices.Clip(sent), exportID, runID)},
		{`UPDATE ctl.pending_membership p SET last_export_id = $6, last_run_id = $7, sends = p.sends + 1
		FROM mim_ims_delta d
		WHERE p.instance = $1 AND p.course_idnumber = d.course AND p.user_idnumber = d.usr AND p.roletype = d.roletype
		  AND d.kind IN ('resend', 'same') AND ` + sentDelta, append(slices.Clip(sent), exportID, runID)},
	} {
		if _, err := tx.Exec(ctx, st.sql, st.args...); err != nil {
			return fmt.Errorf("recording the pending memberships of site %s: %w", instance, err)
		}
	}
	return nil
}

// reconcileProfile settles a site's pending profile values against what
// Moodle has (stg.moodle_user_field, customfields as the users' extract
// read them, through mim_profile_actual, with the account's idnumber under
// carryKey for a row that moved a student code): a row is applied when every field
// sent has the value sent (” meaning no value). Rows of accounts the
// profile mart no longer holds are no longer wanted and go. It reports
// whether Moodle's values could be read (mim_profile_actual then holds
// them for recordProfilePending).
func reconcileProfile(ctx context.Context, tx pgx.Tx, instance string) (observed, bool, error) {
	var o observed
	tag, err := tx.Exec(ctx, `DELETE FROM ctl.pending_profile p WHERE p.instance = $1
		AND NOT EXISTS (SELECT 1 FROM `+ProfileMart+` m WHERE m.instance = $1 AND m.username = p.username)`, instance)
	if err != nil {
		return o, false, fmt.Errorf("dropping the pending profile rows of site %s no longer wanted: %w", instance, err)
	}
	dropped := tag.RowsAffected()
	ok, err := martExists(ctx, tx, userFieldsStg)
	if err != nil || !ok {
		return observed{Dropped: dropped}, false, err
	}
	built, err := builtRun(ctx, tx, userFieldsStg)
	if err != nil {
		return o, true, err
	}
	for _, st := range []struct {
		sql  string
		args []any
	}{
		{`DROP TABLE IF EXISTS pg_temp.mim_profile_actual`, nil},
		{`CREATE TEMP TABLE mim_profile_actual ON COMMIT DROP AS
		SELECT u.username, coalesce(jsonb_object_agg(uf.shortname, uf.value) FILTER (WHERE uf.shortname IS NOT NULL), '{}')
		       || jsonb_build_object('` + carryKey + `', coalesce(min(u.idnumber), '')) AS fields
		FROM stg.moodle_user u LEFT JOIN ` + userFieldsStg + ` uf ON uf.instance = u.instance AND uf.user_id = u.user_id
		WHERE u.instance = $1 AND u.username IS NOT NULL GROUP BY u.username`, []any{instance}},
		{`ANALYZE mim_profile_actual`, nil},
		{`ANALYZE ctl.pending_profile`, nil},
		{`DROP TABLE IF EXISTS pg_temp.mim_pending_check`, nil},
		{`CREATE TEMP TABLE mim_pending_check ON COMMIT DROP AS
		WITH obs AS (
			SELECT complete_run FROM raw.scope_read
			WHERE source = 'moodle' AND instance = $1 AND entity = 'users' AND scope = '' AND complete_run <= $2)
		SELECT p.username, 'profile'::text AS kind, p.first_sent, p.was_there, o.complete_run AS obs_run,
		       o.complete_run IS NOT NULL AND o.complete_run > p.last_run_id AS eligible,
		       ` + profileSeen("p.fields") + ` AS seen
		FROM ctl.pending_profile p LEFT JOIN obs o ON true
		LEFT JOIN mim_profile_actual x ON x.username = p.username
		WHERE p.instance = $1`, []any{instance, built}},
		{`ANALYZE mim_pending_check`, nil},
	} {
		if _, err := tx.Exec(ctx, st.sql, st.args...); err != nil {
			return o, true, fmt.Errorf("comparing the pending profile values of site %s with Moodle: %w", instance, err)
		}
	}
	o, err = settle(ctx, tx, "ctl.pending_profile", string(Profile), instance, []string{"username"})
	o.Dropped = dropped
	return o, true, err
}

// profileSeen is the SQL of whether Moodle has an account's profile values
// as sent, x being its row of mim_profile_actual: every field has the value
// sent (” meaning none).
func profileSeen(fields string) string {
	return `x.username IS NOT NULL AND NOT EXISTS (
		SELECT 1 FROM jsonb_each_text(` + fields + `) f(k, v) WHERE f.v IS DISTINCT FROM coalesce(x.fields ->> f.k, ''))`
}

// recordProfilePending makes the rows the CSV carried pending: values that
// differ from the pending ones start a new count, the same values count a
// send.
func recordProfilePending(ctx context.Context, tx pgx.Tx, instance string, runID, exportID int64, rows []profileRow, actual bool) error {
	users := make([]string, len(rows))
	fields := make([]string, len(rows))
	for i, r := range rows {
		users[i], fields[i] = r.username, r.fields
	}
	wasThere, actualJoin := "false", ""
	if actual {
		wasThere = profileSeen("r.fields::jsonb")
		actualJoin = "LEFT JOIN mim_profile_actual x ON x.username = r.username"
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ctl.pending_profile AS p (instance, username, fields, first_export_id, last_export_id, last_run_id, was_there)
		SELECT $1, r.username, r.fields::jsonb, $4, $4, $5, `+wasThere+` FROM unnest($2::text[], $3::text[]) r(username, fields) `+actualJoin+`
		ON CONFLICT (instance, username) DO UPDATE
		SET last_export_id = EXCLUDED.last_export_id, last_run_id = EXCLUDED.last_run_id,
		    sends = CASE WHEN p.fields = EXCLUDED.fields THEN p.sends + 1 ELSE 1 END,
		    first_export_id = CASE WHEN p.fields = EXCLUDED.fields THEN p.first_export_id ELSE EXCLUDED.first_export_id END,
		    first_sent = CASE WHEN p.fields = EXCLUDED.fields THEN p.first_sent ELSE now() END,
		    misses = CASE WHEN p.fields = EXCLUDED.fields THEN p.misses ELSE 0 END,
		    checked_run = CASE WHEN p.fields = EXCLUDED.fields THEN p.checked_run END,
		    was_there = CASE WHEN p.fields = EXCLUDED.fields THEN p.was_there ELSE EXCLUDED.was_there END,
		    fields = EXCLUDED.fields`, instance, users, fields, exportID, runID); err != nil {
		return fmt.Errorf("recording the pending profile values of site %s: %w", instance, err)
	}
	return nil
}

// profileRow is one account the profile CSV carried and the jsonb text of
// its values.
type profileRow struct{ username, fields string }

// Pending is what one site still waits to see of one feed.
type Pending struct {
	Instance string
	Feed     Feed
	Count    int64 // changes not seen applied yet
	// Long are those that at least Nights extracts since their last file
	// did not show; Oldest is when the oldest of them was first sent.
	Long   int64
	Nights int
	Oldest time.Time
	// Cause is the likely cause of the long ones; Examples name a few.
	Cause    string
	Examples []string
}

// PendingReport lists, per site and feed, the changes Moodle has not been
// seen to apply, with the likely cause of those pending for
// pending_alert_nights extracts or more.
func PendingReport(ctx context.Context, q warehouse.Querier) ([]Pending, error) {
	var nights int
	if err := q.QueryRow(ctx, `SELECT coalesce((SELECT value::int FROM ctl.settings WHERE key = $1), 2)`,
		SettingPendingNights).Scan(&nights); err != nil {
		return nil, fmt.Errorf("reading %s: %w", SettingPendingNights, err)
	}
	rows, err := q.Query(ctx, `
		WITH p AS (
			SELECT instance, 'ims' AS feed, misses, first_sent, kind,
			       course_idnumber || ': ' || user_idnumber || ' (roletype ' || roletype || ', ' || kind || ')' AS what
			FROM ctl.pending_membership
			UNION ALL
			SELECT instance, 'profile_csv', misses, first_sent, 'profile', username || ' ' || fields::text FROM ctl.pending_profile)
		SELECT p.instance, p.feed, count(*), count(*) FILTER (WHERE misses >= $1),
		       min(first_sent) FILTER (WHERE misses >= $1),
		       coalesce(array_agg(kind ORDER BY kind) FILTER (WHERE misses >= $1), '{}'),
		       coalesce((array_agg(what ORDER BY first_sent, what) FILTER (WHERE misses >= $1))[1:3], '{}'),
		       o.read_through
		FROM p LEFT JOIN ctl.feed_observed o ON o.instance = p.instance AND o.feed = p.feed
		GROUP BY p.instance, p.feed, o.read_through ORDER BY 1, 2`, nights)
	if err != nil {
		return nil, fmt.Errorf("reading the changes Moodle has not applied yet: %w", err)
	}
	defer rows.Close()
	var out []Pending
	for rows.Next() {
		p := Pending{Nights: nights}
		var oldest, through *time.Time
		var kinds []string
		var feed string
		if err := rows.Scan(&p.Instance, &feed, &p.Count, &p.Long, &oldest, &kinds, &p.Examples, &through); err != nil {
			return nil, fmt.Errorf("reading the changes Moodle has not applied yet: %w", err)
		}
		p.Feed = Feed(feed)
		if oldest != nil {
			p.Oldest = *oldest
			p.Cause = pendingCause(p.Feed, p.Instance, p.Oldest, through, kinds)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// pendingCause names the likely cause of long-pending changes. When no
// change sent since the oldest of them has been seen applied, Moodle may
// not be reading the files (or rejects them); when it has, or when what is
// pending cannot show that a file was read (drops alone), the kinds of
// change name what a site's settings do to them.
func pendingCause(feed Feed, instance string, oldest time.Time, readThrough *time.Time, kinds []string) string {
	notRead := readThrough == nil || readThrough.Before(oldest)
	var causes []string
	if notRead {
		since := "sent since " + oldest.Format("2006-01-02 15:04")
		if readThrough == nil {
			since = "MIM sent"
		}
		switch feed {
		case IMS:
			causes = append(causes, fmt.Sprintf("no change %s has been seen applied: Moodle's enrolment task may not be running, "+
				"or not reading the file: the IMS task (%s) and %s (its imsfilelocation; the file's <target> must be the site's "+
				"imsrestricttarget), or, for a flat-file site, enrol_flatfile's task (%s) and %s",
				since, imsTask, IMSFileName(instance), flatfileTask, FlatfileName(instance)))
		case Profile:
			causes = append(causes, fmt.Sprintf("no profile value %s has been seen in Moodle: tool_uploaduser may not be run on %s, "+
				"or it rejects the file (one unknown profile_field_ column aborts the whole upload)", since, ProfileFileName(instance)))
		}
		if readThrough == nil {
			return causes[0]
		}
	} else if feed == Profile {
		return "Moodle applied other rows of the same files: these accounts' values did not take " +
			"(the username is not on the site, or the web-service role cannot see the field)"
	}
	prefix := "Moodle read files that carried them: "
	if notRead {
		prefix = "or Moodle read them: "
	}
	var kindCauses []string
	seen := map[string]bool{}
	for _, k := range kinds {
		if seen[k] {
			continue
		}
		seen[k] = true
		switch k {
		case "add":
			kindCauses = append(kindCauses, "enrolments it did not make (the roletype is not mapped in the site's imsrolemap, "+
				"or the user's or course's idnumber is not the site's)")
		case "drop", "suspend":
			if !seen["drop/suspend"] {
				kindCauses = append(kindCauses, "drops it did not act on (imsunenrol is off, unenrolaction keeps the enrolment, "+
					"or the enrolment is not the IMS plugin's)")
				seen["drop/suspend"] = true
			}
		case "change":
			kindCauses = append(kindCauses, "date changes, which web services do not show: they count as applied once a change sent with them is")
		}
	}
	if len(kindCauses) > 0 {
		causes = append(causes, prefix+strings.Join(kindCauses, "; "))
	}
	return strings.Join(causes, "; ")
}

// The scheduled tasks that read the enrolment files.
const (
	imsTask      = `\enrol_imsenterprise\task\cron_task`
	flatfileTask = `\enrol_flatfile\task\flatfile_sync_task`
)

// describePending words a site's pending changes for an export's notes.
func describePending(p Pending) string {
	s := fmt.Sprintf("%s sent before and not yet seen applied in Moodle", plural(p.Count, "change", "changes"))
	if p.Long > 0 {
		s += fmt.Sprintf("; %d of them for %d or more extracts (since %s, e.g. %s): %s",
			p.Long, p.Nights, p.Oldest.Format("2006-01-02"), strings.Join(p.Examples, "; "), p.Cause)
	}
	return s
}

// sitePending returns the pending report of one site's feed, if any.
func sitePending(ctx context.Context, q warehouse.Querier, instance string, feed Feed) (*Pending, error) {
	all, err := PendingReport(ctx, q)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].Instance == instance && all[i].Feed == feed {
			return &all[i], nil
		}
	}
	return nil, nil
}

// notePending says in an export's result what Moodle was seen to apply of
// earlier files and what this one carries again, with the likely cause of
// changes pending for pending_alert_nights extracts or more.
func (x *Exporter) notePending(ctx context.Context, q warehouse.Querier, instance string, feed Feed, o observed,
	resends, frozen int64, res *Result) error {
	if o.Confirmed > 0 {
		res.note("%s sent earlier now seen applied in Moodle", plural(o.Confirmed, "change", "changes"))
	}
	if o.Dropped > 0 {
		res.note("%s pending for accounts no longer in %s forgotten", plural(o.Dropped, "row", "rows"), ProfileMart)
	}
	if resends > 0 {
		res.note("%s sent earlier and not yet seen applied carried again", plural(resends, "change", "changes"))
	}
	if frozen > 0 {
		res.note("%s pending in frozen courses not carried (their mappings are all inactive)", plural(frozen, "change", "changes"))
	}
	p, err := sitePending(ctx, q, instance, feed)
	if err != nil || p == nil || p.Long == 0 {
		return err
	}
	res.Pending = p
	return nil
}
