package e2e_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/synth/synthworld"
	"github.com/mimwarehouse/mim/load/loadtest"
)

// Enrolment methods land from the web services (only what Moodle lists
// there: enabled self and guest instances) and, from a database reading of
// a site (the payload docs/contracts.md gives for moodle-db), every
// instance with its status; a disabled IMS instance explains the missing
// enrolments of its course in mart.enrolment_drift.
func TestEnrolmentMethodsExplainDrift(t *testing.T) {
	w := &world{synthworld.New(t, synthworld.Options{Synth: synth.Options{Scale: synth.Small},
		Entities: []string{"site_info", "categories", "courses", "users", "enrolments", "roles", "profile_fields", "enrol_methods"}})}
	w.extract(t)
	w.mapAndSet(t)
	ctx := context.Background()
	self := loadtest.Count(t, w.DB.Pool, `source = 'moodle' AND instance = 'main' AND entity = 'enrol_methods'
		AND payload->>'type' = 'self' AND payload->>'mim_source' = 'web_service' AND (payload->>'status')::boolean`)
	if self == 0 {
		t.Fatal("no self enrolment instance landed from the web services")
	}
	if n := loadtest.Count(t, w.DB.Pool, `entity = 'enrol_methods' AND payload->>'type' IN ('imsenterprise', 'manual')`); n != 0 {
		t.Errorf("the web services do not list IMS or manual instances, yet %d landed", n)
	}
	if _, err := w.Transform(t, nil); err != nil {
		t.Fatal(err)
	}
	var course string
	var courseID int64
	var missing int
	if err := w.DB.Pool.QueryRow(ctx, `SELECT course_idnumber, min(course_id), count(*) FROM mart.enrolment_drift
		WHERE instance = 'main' AND kind = 'missing' GROUP BY 1 ORDER BY 3 DESC, 1 LIMIT 1`).Scan(&course, &courseID, &missing); err != nil {
		t.Fatalf("no missing drift planted: %v", err)
	}
	if n := count(t, w.DB.Pool, `SELECT count(*) FROM mart.enrolment_drift WHERE explanation IS NOT NULL`); n != 0 {
		t.Errorf("%d explanations before any instance is known disabled", n)
	}
	// What the moodle-db source lands for that course: its IMS instance,
	// disabled (mdl_enrol.status 1), with every other instance.
	last, err := ledger.Recent(ctx, w.DB.Pool, 1)
	if err != nil || len(last) != 1 {
		t.Fatalf("the extraction's run: %v %v", last, err)
	}
	for i, m := range []struct {
		typ     string
		enabled bool
	}{{"manual", true}, {"imsenterprise", false}, {"cohort", true}} {
		payload := fmt.Sprintf(`{"id": %d, "courseid": %d, "type": %q, "name": "", "status": %t, "mim_source": "database"}`,
			9000+i, courseID, m.typ, m.enabled)
		loadtest.Put(t, w.DB.Pool, loadtest.Record{ID: extract.EntityID{Source: "moodle", Instance: "main", Entity: "enrol_methods"},
			Key: fmt.Sprintf("%d:%d", courseID, 9000+i), Scope: fmt.Sprint(courseID), Payload: []byte(payload), Run: last[0].ID})
	}
	if _, err := w.Transform(t, nil); err != nil {
		t.Fatal(err)
	}
	if n := count(t, w.DB.Pool, `SELECT count(*) FROM mart.enrolment_drift WHERE instance = 'main' AND course_idnumber = $1
		AND kind = 'missing' AND explanation = 'the course''s imsenterprise enrolment is disabled'`, course); n != missing {
		t.Errorf("%d of the %d missing enrolments of %s explained", n, missing, course)
	}
	if n := count(t, w.DB.Pool, `SELECT count(*) FROM mart.enrolment_drift WHERE explanation IS NOT NULL AND course_idnumber <> $1`, course); n != 0 {
		t.Errorf("%d explanations in other courses", n)
	}
	if n := count(t, w.DB.Pool, `SELECT count(*) FROM stg.moodle_enrol_method WHERE instance = 'main' AND course_id = $1 AND complete`, courseID); n != 3 {
		t.Errorf("the database reading is complete: %d rows", n)
	}
}
