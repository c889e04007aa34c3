package feeds

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mimwarehouse/mim/export/oneroster"
	"github.com/mimwarehouse/mim/internal/synth"
)

// On the real marts of the synthetic institution: the first OneRoster
// export is a bulk set that passes the spec's checks (required columns,
// vocabularies, references between files), holds one enrollment per
// person, class and role of the IMS target; the next, after a course loses
// its mapping, is a delta that only removes.
func TestOneRosterBulkThenDelta(t *testing.T) {
	if testing.Short() {
		t.Skip("the whole pipeline on the small institution (-short)")
	}
	w := newWorld(t, synth.Small)
	w.extractAndTransform(t, true)
	w.e.cfg.Moodle[0].OneRoster = true
	x := New(w.e.pool, feedsConfig(w.e.cfg), WithOperator("test"))
	if sum := w.e.export(x, Options{Instances: []string{"archive"}, DryRun: true}); len(sum.Results) == 0 ||
		slices.ContainsFunc(sum.Results, func(r *Result) bool { return r.Feed == OneRoster }) {
		t.Errorf("a site without oneroster got the feed: %+v", sum.Results)
	}
	oneOnly := Options{Feeds: []Feed{OneRoster}, Instances: []string{"main"}}
	sum := w.e.export(x, oneOnly)
	r := w.e.result(sum, "main", OneRoster)
	if r.Status != StatusPublished || sum.Err() != nil {
		t.Fatalf("first export: %s %v %v", r.Status, r.Err, r.Notes)
	}
	path := filepath.Join(w.e.dir, OneRosterFileName("main"))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := oneroster.Validate(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range oneroster.Files {
		if got.Modes[f] != oneroster.Bulk || got.Rows[f] == 0 {
			t.Errorf("%s: %s with %d rows", f, got.Modes[f], got.Rows[f])
		}
	}
	wantEnrols := w.e.count(`SELECT count(*) FROM (SELECT DISTINCT course_idnumber, user_idnumber,
			CASE WHEN roletype IN ('01', '04') THEN 's' WHEN roletype IN ('05', '07') THEN 'a' ELSE 't' END
		FROM mart.exp_ims_membership WHERE instance = 'main') m`)
	if int64(got.Rows["enrollments"]) != wantEnrols || wantEnrols == 0 {
		t.Errorf("%d enrollments, the IMS target has %d", got.Rows["enrollments"], wantEnrols)
	}
	if n := w.e.count(`SELECT count(DISTINCT user_idnumber) FROM mart.exp_ims_membership WHERE instance = 'main'`); int64(got.Rows["users"]) != n {
		t.Errorf("%d users, the target has %d people", got.Rows["users"], n)
	}
	if got.Rows["roles"] != got.Rows["users"] {
		t.Errorf("%d roles for %d users", got.Rows["roles"], got.Rows["users"])
	}

	// Nothing changed: nothing sent.
	sum = w.e.export(x, oneOnly)
	if r := w.e.result(sum, "main", OneRoster); r.Status != StatusEmpty {
		t.Errorf("unchanged: %s adds %d drops %d", r.Status, r.Adds, r.Drops)
	}

	// One class's mapping goes: a delta removing the class and its
	// enrollments (and nothing else of what stays).
	var course string
	var lost int64
	if err := w.e.pool.QueryRow(context.Background(), `SELECT course_idnumber, count(*) FROM mart.exp_ims_membership
		WHERE instance = 'main' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1`).Scan(&course, &lost); err != nil {
		t.Fatal(err)
	}
	if _, err := w.e.pool.Exec(context.Background(), `DELETE FROM ctl.course_mapping_event WHERE course_idnumber = $1`, course); err != nil {
		t.Fatal(err)
	}
	if _, err := w.e.pool.Exec(context.Background(), `DELETE FROM ctl.course_mapping WHERE instance = 'main' AND course_idnumber = $1`, course); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Transform(t, nil); err != nil {
		t.Fatal(err)
	}
	sum = w.e.export(x, oneOnly)
	r = w.e.result(sum, "main", OneRoster)
	if r.Status != StatusPublished {
		t.Fatalf("delta: %s %v %v", r.Status, r.Err, r.Decisions)
	}
	data, _ = os.ReadFile(path)
	got, err = oneroster.Validate(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Modes["enrollments"] != oneroster.Delta || got.Modes["classes"] != oneroster.Delta || got.Modes["orgs"] != oneroster.Absent {
		t.Errorf("delta modes %v", got.Modes)
	}
	if r.Drops < lost+1 {
		t.Errorf("removed %d rows, want at least the class and its %d enrollments", r.Drops, lost)
	}
	if n := w.e.count(`SELECT count(*) FROM ctl.published_oneroster WHERE instance = 'main' AND file = 'classes' AND sourced_id = $1`, course); n != 0 {
		t.Errorf("the removed class is still recorded as published")
	}
}
