package e2e_test

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/mimwarehouse/mim/internal/synth"
	sqlfiles "github.com/mimwarehouse/mim/sql"
	"github.com/mimwarehouse/mim/transform"
)

// projectWith loads the embedded models plus extra files (path under sql/
// -> SQL), as `mim transform --models DIR` would read a directory holding
// them.
func projectWith(tb testing.TB, extra map[string]string) *transform.Project {
	tb.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(sqlfiles.Models, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sqlfiles.Models, path)
		m[path] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	for path, sql := range extra {
		m[path] = &fstest.MapFile{Data: []byte(sql)}
	}
	p, err := transform.Load(m)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// fingerprints hashes the rows of every int and mart table.
func fingerprints(t *testing.T, w *world) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range rows(t, w.DB.Pool, `SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname IN ('int', 'mart') AND c.relkind = 'r' ORDER BY 1`) {
		h := rows(t, w.DB.Pool, `SELECT count(*)::text || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM `+r[0]+` x`)
		out[r[0]] = h[0][0]
	}
	for _, r := range rows(t, w.DB.Pool, `SELECT 'ctl.config_site', string_agg(instance || '=' || group_prefix, ',' ORDER BY instance) FROM ctl.config_site`) {
		out[r[0]] = r[1]
	}
	return out
}

// A night whose data would change the marts, but whose checks fail over
// the real marts, must leave every mart (and the configuration copy the
// hook wrote) exactly as the previous good night left it; the next night
// without the failure commits the change.
func TestFailingCheckKeepsYesterdaysMarts(t *testing.T) {
	w := newWorld(t, synth.Options{Scale: synth.Small})
	w.extract(t)
	w.mapAndSet(t)
	if _, err := w.Transform(t, project(t)); err != nil {
		t.Fatal(err)
	}
	before := fingerprints(t, w)
	if len(before) < 30 {
		t.Fatalf("only %d tables fingerprinted: %v", len(before), before)
	}

	// Tonight: a course's mappings deactivated, the tutor role renamed, the
	// main site's group prefix changed; and a test over the real marts that
	// fails on the renamed role.
	ctx := context.Background()
	main := w.In.Sites[0].Name
	var course string
	for _, m := range w.In.Mappings {
		if m.Instance == main && m.Active && m.GroupSync {
			course = m.CourseIDNumber
			break
		}
	}
	if n := count(t, w.DB.Pool, `SELECT count(*) FROM mart.fct_enrolment_target WHERE instance = $1 AND course_idnumber = $2`, main, course); n == 0 {
		t.Fatalf("course %s has no target rows to lose", course)
	}
	if _, err := w.DB.Pool.Exec(ctx, `UPDATE ctl.course_mapping SET active = false WHERE instance = $1 AND course_idnumber = $2`, main, course); err != nil {
		t.Fatal(err)
	}
	w.Setting(t, "tutor_role", "ptutor")
	w.Cfg.Moodle[0].GroupPrefix = "cmis:"
	failing := projectWith(t, map[string]string{"tests/zz_tutor_role_is_agreed.sql": `-- description: the tutor role is the one agreed with the sites
-- depends: mart.exp_personal_tutor
SELECT instance, role_shortname, tutor_idnumber, student_idnumber FROM mart.exp_personal_tutor WHERE role_shortname <> 'personal_tutor'`})
	res, err := w.Transform(t, failing)
	var ce *transform.CheckError
	if !errors.As(err, &ce) {
		t.Fatalf("%v, want a *CheckError", err)
	}
	if res.Committed || len(ce.Failures) != 1 || ce.Failures[0].Check != "test:zz_tutor_role_is_agreed" || ce.Failures[0].Failures == 0 ||
		len(ce.Failures[0].Sample) == 0 || ce.Failures[0].Sample[0][1] != "ptutor" {
		t.Fatalf("committed %v, failures %+v", res.Committed, ce.Failures)
	}
	if !strings.Contains(err.Error(), "zz_tutor_role_is_agreed") {
		t.Errorf("the report does not name the test: %v", err)
	}
	after := fingerprints(t, w)
	for name, h := range before {
		if after[name] != h {
			t.Errorf("%s changed on a refused night", name)
		}
	}

	// The same night without the failing test commits, and the marts the
	// changes touch do change: the refused night was not a no-op by chance.
	if _, err := w.Transform(t, project(t)); err != nil {
		t.Fatal(err)
	}
	committed := fingerprints(t, w)
	for _, name := range []string{"mart.fct_enrolment_target", "mart.exp_ims_membership", "mart.exp_personal_tutor", "mart.exp_group_target", "ctl.config_site"} {
		if committed[name] == before[name] {
			t.Errorf("%s did not change when the night committed", name)
		}
	}
	if n := count(t, w.DB.Pool, `SELECT count(*) FROM mart.fct_enrolment_target WHERE instance = $1 AND course_idnumber = $2`, main, course); n != 0 {
		t.Errorf("course %s, all of its mappings inactive, still has %d target rows", course, n)
	}
	if n := count(t, w.DB.Pool, `SELECT count(*) FROM mart.exp_group_target WHERE instance = $1 AND NOT starts_with(group_idnumber, 'cmis:')`, main); n != 0 {
		t.Errorf("%d group idnumbers of %s do not carry the new prefix", n, main)
	}
}
