package feeds

import (
	"context"
	"testing"

	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/synth/synthworld"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// world is the synthetic institution run through the real pipeline
// (synthworld), with the feeds tests' env over its warehouse.
type world struct {
	*synthworld.World
	e *env
}

func newWorld(t *testing.T, scale synth.Scale) *world {
	t.Helper()
	sw := synthworld.New(t, synthworld.Options{Synth: synth.Options{Scale: scale},
		Entities: []string{"site_info", "categories", "courses", "users", "enrolments", "roles", "profile_fields"},
		Config: `exports:
  profile_fields:
    - {column: student_number, shortname: studentno, required: true}
    - {column: programme_code, shortname: progcode}
    - {column: ug_pg, shortname: ugpg}
    - {column: year_level, shortname: yearlevel}
`})
	sw.Cfg.Exports.Dir = t.TempDir()
	w := &world{World: sw, e: &env{t: t, db: sw.DB, pool: sw.DB.Pool, cfg: sw.Cfg, dir: sw.Cfg.Exports.Dir}}
	sw.MapAndSet(t, "test")
	return w
}

// extractAndTransform reads SITS and CMIS (when sis) and every site with
// the real extractors and loader, then runs the whole transform.
func (w *world) extractAndTransform(t *testing.T, sis bool) {
	t.Helper()
	w.Extract(t, sis)
	if _, err := w.Transform(t, nil); err != nil {
		t.Fatalf("transforming: %v", err)
	}
}

// drift counts mart.enrolment_drift by kind for a site.
func (w *world) drift(instance string) map[string]int64 {
	w.e.t.Helper()
	rows, err := w.e.pool.Query(context.Background(), `SELECT kind, count(*) FROM mart.enrolment_drift WHERE instance = $1 GROUP BY 1`, instance)
	if err != nil {
		w.e.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			w.e.t.Fatal(err)
		}
		out[k] = n
	}
	return out
}

// On the real marts: export → apply (the simulator's IMS cron) → extract →
// transform → the drift the IMS feed can mend (missing enrolments) is zero.
func TestRealMartsExportApplyExtractDrift(t *testing.T) {
	if testing.Short() {
		t.Skip("the whole pipeline on the small institution (-short)")
	}
	w := newWorld(t, synth.Small)
	w.extractAndTransform(t, true)
	man, _ := w.In.Manifest.Site("main")
	before := w.drift("main")
	if before["missing"] != int64(man.DriftMissing) {
		t.Logf("drift before (mart): %v; manifest missing %d, suspended %d", before, man.DriftMissing, man.DriftSuspended)
	}
	if before["missing"] == 0 {
		t.Fatalf("the planted drift is not visible in mart.enrolment_drift: %v", before)
	}
	x := New(w.e.pool, feedsConfig(w.e.cfg), WithOperator("test"))
	sum := w.e.export(x, Options{})
	r := w.e.result(sum, "main", IMS)
	if r.Status != StatusPublished || sum.Err() != nil {
		t.Fatalf("export: %s %v %v", r.Status, sum.Err(), r.Notes)
	}
	for _, res := range sum.Results {
		t.Logf("%s/%s: %s rows %d adds %d changes %d drops %d skipped %d %v", res.Instance, res.Feed, res.Status, res.Rows,
			res.Adds, res.Changes, res.Drops, res.Skipped, res.Notes)
	}
	if r.Adds != int64(man.ActiveMemberships) {
		t.Errorf("IMS adds %d, the manifest's active memberships %d", r.Adds, man.ActiveMemberships)
	}
	if r := w.e.result(sum, "main", Tutor); r.Status != StatusPublished || r.Rows != int64(man.PersonalTutorPairs) {
		t.Errorf("tutor: %s %d pairs, the manifest's %d", r.Status, r.Rows, man.PersonalTutorPairs)
	}
	if r := w.e.result(sum, "main", Profile); r.Status != StatusPublished || r.Rows != int64(man.ProfileFieldRows) || r.Skipped != 0 {
		t.Errorf("profile: %s %d rows (%d refused), the manifest's %d", r.Status, r.Rows, r.Skipped, man.ProfileFieldRows)
	}
	rep, err := w.Sites["main"].IMSCron(moodletest.IMSSettings{RestrictTarget: "main", Unenrol: true}).Run(w.e.imsPath("main"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Skipped != "" || rep.TargetMismatch || rep.UnknownCourses != 0 || rep.UnknownUsers != 0 || rep.RolesSkipped != 0 {
		t.Errorf("the file did not apply cleanly: %s", rep)
	}
	if rep.Enrolled < int(before["missing"]) {
		t.Errorf("enrolled %d, fewer than the %d missing", rep.Enrolled, before["missing"])
	}
	w.extractAndTransform(t, false)
	after := w.drift("main")
	t.Logf("drift before %v, after %v; cron: %s", before, after, rep)
	if after["missing"] != 0 {
		t.Errorf("missing enrolments after the feed was applied: %d", after["missing"])
	}
	if after["extra"] != before["extra"] {
		t.Errorf("extra enrolments changed: %d -> %d (MIM drops only what it published)", before["extra"], after["extra"])
	}
	// The next export, on the marts rebuilt from what Moodle now has, sends nothing new.
	sum = w.e.export(x, imsOnly())
	if r := w.e.result(sum, "main", IMS); r.Status != StatusEmpty {
		t.Errorf("after applying: %s adds %d drops %d changes %d", r.Status, r.Adds, r.Drops, r.Changes)
	}
}
