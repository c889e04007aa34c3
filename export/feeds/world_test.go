package feeds

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/extract/cmis"
	moodlex "github.com/mimwarehouse/mim/extract/moodle"
	"github.com/mimwarehouse/mim/extract/sits"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/martconfig"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/load"
	"github.com/mimwarehouse/mim/moodle"
	"github.com/mimwarehouse/mim/moodle/moodletest"
	"github.com/mimwarehouse/mim/transform"
)

// world is the synthetic institution run through the real pipeline: SITS
// and CMIS written into the warehouse database, its Moodle sites in the
// simulator, the real extractors, loader and transform building the marts.
type world struct {
	e     *env
	in    *synth.Institution
	sites map[string]*moodletest.Site
}

func newWorld(t *testing.T, scale synth.Scale) *world {
	t.Helper()
	ctx := context.Background()
	db := pgtest.New(t)
	in, err := synth.Generate(synth.Options{Scale: scale})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Write(ctx, db.Pool, "", nil); err != nil {
		t.Fatal(err)
	}
	w := &world{in: in, sites: map[string]*moodletest.Site{}}
	var yaml strings.Builder
	yaml.WriteString(`environment: test
warehouse: {dsn: "${DSN}"}
sources:
  sits: {driver: pgx, dsn: "${DSN}", schema: SISMGR}
  cmis: {driver: pgx, dsn: "${DSN}", schema: MOODLEMGR}
moodle:
`)
	urls := map[string]string{}
	for _, s := range in.Sites {
		sim := moodletest.NewServer(t, *s.State, moodletest.WithToken(simToken))
		w.sites[s.Name] = sim
		urls["URL_"+s.Name] = sim.URL()
		fmt.Fprintf(&yaml, "  - {name: %s, url: \"${URL_%s}\", token: \"${TOKEN}\", environment: test, concurrency: 4, page_size: 500,"+
			" entities: [site_info, categories, courses, users, enrolments, roles, profile_fields]}\n", s.Name, s.Name)
	}
	yaml.WriteString(`exports:
  profile_fields:
    - {column: student_number, shortname: studentno, required: true}
    - {column: programme_code, shortname: progcode}
    - {column: ug_pg, shortname: ugpg}
    - {column: year_level, shortname: yearlevel}
`)
	cfg, err := config.Parse([]byte(yaml.String()), func(k string) (string, bool) {
		switch k {
		case "DSN":
			return db.DSN.Reveal(), true
		case "TOKEN":
			return simToken, true
		}
		u, ok := urls[k]
		return u, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Exports.Dir = t.TempDir()
	w.e = &env{t: t, db: db, pool: db.Pool, cfg: cfg, dir: cfg.Exports.Dir}
	if _, err := synth.InsertMappings(ctx, db.Pool, in.Mappings, "test"); err != nil {
		t.Fatal(err)
	}
	w.e.set("min_mod_occ_year", fmt.Sprint(in.Year))
	return w
}

// extract reads SITS and CMIS (when sis) and every site with the real
// extractors and loader, then runs the whole transform.
func (w *world) extractAndTransform(t *testing.T, sis bool) {
	t.Helper()
	ctx := context.Background()
	cfg := w.e.cfg
	run, err := ledger.Begin(ctx, w.e.pool, "extract", pgtest.Environment, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	loader := load.New(w.e.pool, run)
	var srcs []extract.Source
	if sis {
		s, err := sits.New(cfg.Sources.SITS, extract.Options{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := cmis.New(cfg.Sources.CMIS, extract.Options{})
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, s, c)
	}
	for i := range cfg.Moodle {
		site := &cfg.Moodle[i]
		client, err := moodle.New(site.Name, site.URL, site.Token.Reveal(), moodle.WithRate(0),
			moodle.WithConcurrency(site.Concurrency), moodle.WithRetries(1), moodle.WithBackoff(time.Millisecond, 10*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		src, err := moodlex.New(client, site, extract.Options{}, moodlex.WithWarehouse(w.e.pool))
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, src)
	}
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	for i, src := range srcs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = src.Extract(ctx, loader) }()
	}
	wg.Wait()
	err = errors.Join(errs...)
	_ = run.Finish(ctx, ledger.Outcome(err), 0, err)
	if err != nil {
		t.Fatalf("extracting: %v", err)
	}
	p, err := transform.LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transform.Run(ctx, w.e.pool, p, transform.Options{StatementTimeout: 10 * time.Minute, LockTimeout: time.Minute,
		Hooks: []transform.Hook{martconfig.Hook(cfg)}}); err != nil {
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
	man, _ := w.in.Manifest.Site("main")
	before := w.drift("main")
	if before["missing"] != int64(man.DriftMissing) {
		t.Logf("drift before (mart): %v; manifest missing %d, suspended %d", before, man.DriftMissing, man.DriftSuspended)
	}
	if before["missing"] == 0 {
		t.Fatalf("the planted drift is not visible in mart.enrolment_drift: %v", before)
	}
	x := New(w.e.pool, w.e.cfg, WithOperator("test"))
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
	rep, err := w.sites["main"].IMSCron(moodletest.IMSSettings{RestrictTarget: "main", Unenrol: true}).Run(w.e.imsPath("main"))
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
