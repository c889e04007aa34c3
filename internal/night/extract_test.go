package night_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/night"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/load"
)

// fixtureSite is a Moodle-like site held in memory: the test source reads
// it as the Moodle extractor would (courses as one snapshot, enrolments per
// course). The database the records land in is real.
type fixtureSite struct {
	mu          sync.Mutex
	courses     map[int][]int // course id -> enrolled user ids
	failCourse  map[int]bool  // reading this course's enrolments fails half-way
	failOpen    bool          // the whole site is unreachable
	leaveOpen   bool          // a buggy source: returns with an entity neither committed nor aborted
	extractions int
}

type fixtureSource struct {
	name string
	site *fixtureSite
	opts extract.Options
}

func (s *fixtureSource) Name() string { return s.name }

func (s *fixtureSource) wants(entity string) bool {
	return len(s.opts.Entities) == 0 || slices.Contains(s.opts.Entities, entity)
}

func (s *fixtureSource) Extract(ctx context.Context, sink extract.Sink) error {
	s.site.mu.Lock()
	defer s.site.mu.Unlock()
	s.site.extractions++
	_, inst, _ := strings.Cut(s.name, ":")
	if s.site.failOpen {
		return errors.New("reading site info: Moodle answered invalidtoken")
	}
	var ids []int
	for id := range s.site.courses {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var failed []string
	if s.wants("courses") {
		w, err := sink.Entity(ctx, extract.EntityID{Source: "moodle", Instance: inst, Entity: "courses"})
		if err != nil {
			return err
		}
		for _, id := range ids {
			p := fmt.Sprintf(`{"id":%d,"shortname":"C%d","fullname":"Course %d"}`, id, id, id)
			if err := w.Write(ctx, extract.Record{Key: fmt.Sprint(id), Payload: json.RawMessage(p)}); err != nil {
				w.Abort()
				return err
			}
		}
		w.ScopeComplete("")
		if _, err := w.Commit(ctx); err != nil {
			failed = append(failed, err.Error())
		}
	}
	if s.wants("enrolments") {
		w, err := sink.Entity(ctx, extract.EntityID{Source: "moodle", Instance: inst, Entity: "enrolments"})
		if err != nil {
			return err
		}
		if s.opts.Progress != nil {
			s.opts.Progress.Expect("enrolments", int64(len(ids)))
		}
		for _, id := range ids {
			users := s.site.courses[id]
			if s.site.failCourse[id] {
				users = users[:len(users)/2] // half a page, then the read fails
			}
			for _, u := range users {
				p := fmt.Sprintf(`{"id":%d,"username":"u%d","roles":[{"roleid":5,"shortname":"student"}],"mim_courseid":%d,"mim_suspended":false}`, u, u, id)
				if err := w.Write(ctx, extract.Record{Key: fmt.Sprintf("%d:%d", id, u), Scope: fmt.Sprint(id), Payload: json.RawMessage(p)}); err != nil {
					w.Abort()
					return err
				}
			}
			if s.site.failCourse[id] {
				w.ScopeFailed(fmt.Sprint(id), errors.New("core_enrol_get_enrolled_users: HTTP 504"))
			} else {
				w.ScopeComplete(fmt.Sprint(id))
			}
			if s.opts.Progress != nil {
				s.opts.Progress.Done("enrolments", 1)
			}
		}
		if s.site.leaveOpen {
			return nil
		}
		if _, err := w.Commit(ctx); err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

type extractEnv struct {
	t     *testing.T
	db    *pgtest.DB
	env   *night.Env
	sites map[string]*fixtureSite
}

// newExtractEnv is a warehouse and two fixture Moodle sites, alpha and
// beta, which the night opens through its own list of source kinds.
func newExtractEnv(t *testing.T) *extractEnv {
	t.Helper()
	db := pgtest.New(t)
	x := &extractEnv{t: t, db: db, sites: map[string]*fixtureSite{}}
	for _, name := range []string{"alpha", "beta"} {
		site := &fixtureSite{courses: map[int][]int{}, failCourse: map[int]bool{}}
		for c := 2; c <= 5; c++ {
			for u := 1; u <= 10*c; u++ {
				site.courses[c] = append(site.courses[c], 100+u)
			}
		}
		x.sites[name] = site
	}
	cfg, err := config.Parse([]byte("environment: test\nwarehouse: {dsn: \""+db.DSN.Reveal()+"\"}\nmoodle:\n"+
		"  - {name: alpha, url: https://alpha.example.ac.uk, token: t1, environment: test}\n"+
		"  - {name: beta, url: https://beta.example.ac.uk, token: t2, environment: test}\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	x.env = &night.Env{Config: cfg, Operator: "test", Version: "test",
		Warehouse: func(context.Context) (*pgxpool.Pool, error) { return db.Pool, nil },
		Sources: night.Sources{"moodle": func(_ context.Context, _ *night.Env, name string, opts extract.Options) (extract.Source, error) {
			for _, en := range opts.Entities {
				if en != "courses" && en != "enrolments" {
					return nil, fmt.Errorf("the fixture has no entity %q", en)
				}
			}
			_, inst, _ := strings.Cut(name, ":")
			return &fixtureSource{name: name, site: x.sites[inst], opts: opts}, nil
		}},
	}
	return x
}

// extract runs `mim extract` with these options; shown says whether the
// outcome was shown before the run ended.
func (x *extractEnv) extract(opts night.ExtractOptions) (*night.ExtractRun, error) {
	x.t.Helper()
	if opts.Progress == "" {
		opts.Progress = "off"
	}
	shown := false
	res, err := night.Extract(context.Background(), x.env, opts, func(runID int64, out *night.ExtractOutcome) error {
		if out.RunID != runID {
			x.t.Errorf("outcome of run %d shown as run %d", out.RunID, runID)
		}
		shown = true
		return nil
	})
	if res != nil && res.Outcome != nil && !shown {
		x.t.Error("the outcome was not shown")
	}
	return res, err
}

func (x *extractEnv) count(sql string, args ...any) int64 {
	x.t.Helper()
	var n int64
	if err := x.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		x.t.Fatal(err)
	}
	return n
}

func (x *extractEnv) lastRun() ledger.RunSummary {
	x.t.Helper()
	runs, err := ledger.Recent(context.Background(), x.db.Pool, 1)
	if err != nil || len(runs) == 0 {
		x.t.Fatalf("no run recorded: %v", err)
	}
	return runs[0]
}

// rowVersions fingerprints every raw row's physical version.
func (x *extractEnv) rowVersions() string {
	var s string
	if err := x.db.Pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(key || '@' || xmin::text || ctid::text, ',' ORDER BY instance, entity, key), '')
		FROM raw.record`).Scan(&s); err != nil {
		x.t.Fatal(err)
	}
	return s
}

// entity finds an entity's report in an outcome.
func entity(t *testing.T, out *night.ExtractOutcome, instance, name string) load.Report {
	t.Helper()
	for _, s := range out.Sources {
		for _, r := range s.Entities {
			if r.ID.Instance == instance && r.ID.Entity == name {
				return r
			}
		}
	}
	t.Fatalf("no %s/%s in the outcome: %+v", instance, name, out.Sources)
	return load.Report{}
}

func TestExtractEndToEnd(t *testing.T) {
	x := newExtractEnv(t)
	// 2 sites x (4 courses + 140 enrolments).
	res, err := x.extract(night.ExtractOptions{})
	if err != nil || res.Status != ledger.Succeeded {
		t.Fatalf("first extract: %v (%+v)", err, res)
	}
	if r := entity(t, res.Outcome, "alpha", "enrolments"); r.Result.In != 140 || r.Result.New != 140 || r.Status != ledger.Succeeded {
		t.Errorf("alpha enrolments: %+v", r)
	}
	if r := entity(t, res.Outcome, "beta", "courses"); r.Result.In != 4 || r.Result.New != 4 {
		t.Errorf("beta courses: %+v", r)
	}
	if n := x.count(`SELECT count(*) FROM raw.record WHERE entity = 'enrolments' AND deleted_run IS NULL`); n != 280 {
		t.Fatalf("%d enrolments in raw", n)
	}
	first := x.lastRun()
	if first.Command != "extract" || first.Status != ledger.Succeeded || first.ID != res.RunID {
		t.Errorf("first run: %+v", first)
	}
	steps, _ := ledger.Steps(context.Background(), x.db.Pool, first.ID)
	if len(steps) != 6 { // per site: one source step and two entity steps
		t.Errorf("%d steps: %+v", len(steps), steps)
	}

	// Nothing changed in Moodle: nothing is rewritten.
	versions := x.rowVersions()
	res, err = x.extract(night.ExtractOptions{})
	if err != nil {
		t.Fatalf("unchanged extract: %v", err)
	}
	if r := entity(t, res.Outcome, "alpha", "enrolments").Result; r.In != 140 || r.New+r.Changed+r.Deleted != 0 || r.Unchanged != 140 {
		t.Errorf("unchanged extract: %+v", r)
	}
	if x.rowVersions() != versions {
		t.Error("an unchanged run rewrote raw rows")
	}
	if n := x.count(`SELECT count(*) FROM raw.record_history`); n != 0 {
		t.Errorf("%d history rows", n)
	}

	// In alpha, course 3 loses every student but its read fails half-way,
	// while course 4 genuinely loses two students and gains one.
	a := x.sites["alpha"]
	a.courses[3] = a.courses[3][:0]
	a.courses[3] = append(a.courses[3], 101, 102, 103, 104) // what a half-read returns: 2 rows
	a.failCourse[3] = true
	a.courses[4] = append(a.courses[4][2:], 999)
	res, err = x.extract(night.ExtractOptions{Sources: []string{"moodle:alpha"}})
	if err != nil || res.Status != ledger.Partial {
		t.Fatalf("partial extract: %v (%+v)", err, res)
	}
	if len(res.Outcome.Sources) != 1 || res.Outcome.Sources[0].Name != "moodle:alpha" {
		t.Errorf("sources read: %+v", res.Outcome.Sources)
	}
	if r := entity(t, res.Outcome, "alpha", "enrolments"); r.Status != ledger.Partial || strings.Join(r.Result.FailedScopes, ",") != "3" {
		t.Errorf("alpha enrolments: %s, failed scopes %v", r.Status, r.Result.FailedScopes)
	}
	if n := x.count(`SELECT count(*) FROM raw.record WHERE instance = 'alpha' AND scope = '3' AND entity = 'enrolments' AND deleted_run IS NULL`); n != 30 {
		t.Errorf("course 3 (failed read) has %d live rows, want all 30 kept", n)
	}
	if n := x.count(`SELECT count(*) FROM raw.record WHERE instance = 'alpha' AND scope = '4' AND deleted_run IS NOT NULL`); n != 2 {
		t.Errorf("course 4 has %d deleted rows, want 2", n)
	}
	if live, err := load.IsLive(context.Background(), x.db.Pool, extract.EntityID{Source: "moodle", Instance: "alpha", Entity: "enrolments"}, "4:999"); err != nil || !live {
		t.Error("the new enrolment in course 4 did not land")
	}
	if r := x.lastRun(); r.Status != ledger.Partial || r.StepErrors != 1 {
		t.Errorf("run: %+v", r)
	}

	// beta is unreachable: alpha still lands, the run is partial, exit 1.
	x.sites["beta"].failOpen = true
	a.failCourse[3] = false
	res, err = x.extract(night.ExtractOptions{})
	var xe *night.ExtractError
	if !errors.As(err, &xe) || xe.ExitCode() != 1 || !strings.Contains(err.Error(), "moodle:beta: reading site info: Moodle answered invalidtoken") {
		t.Errorf("failed source: %v", err)
	}
	if res == nil || len(res.Outcome.Sources) != 2 || res.Outcome.Sources[1].Err == nil || len(res.Outcome.Sources[1].Entities) != 0 {
		t.Errorf("failed source outcome: %+v", res)
	}
	if n := x.count(`SELECT count(*) FROM raw.record WHERE instance = 'alpha' AND scope = '3' AND deleted_run IS NOT NULL`); n != 26 {
		t.Errorf("course 3 read completely now: %d deleted, want 26", n)
	}
	if r := x.lastRun(); r.Status != ledger.Partial || r.ExitCode == nil || *r.ExitCode != 1 {
		t.Errorf("run: %+v", r)
	}

	// Only some entities of one site.
	before := x.sites["alpha"].extractions
	res, err = x.extract(night.ExtractOptions{Entities: []string{"moodle:alpha/courses"}})
	if err != nil || len(res.Outcome.Sources) != 1 || len(res.Outcome.Sources[0].Entities) != 1 ||
		res.Outcome.Sources[0].Entities[0].ID.Entity != "courses" || x.sites["alpha"].extractions != before+1 {
		t.Errorf("entity filter: %v %+v", err, res)
	}
}

func TestExtractRefusals(t *testing.T) {
	x := newExtractEnv(t)
	for _, c := range []struct {
		opts night.ExtractOptions
		want string
	}{
		{night.ExtractOptions{Sources: []string{"sits"}}, `--source "sits" is not a configured source (configured: moodle:alpha, moodle:beta)`},
		{night.ExtractOptions{Entities: []string{"users"}, Sources: []string{"moodle:alpha"}}, `moodle:alpha: the fixture has no entity "users"`},
		{night.ExtractOptions{Entities: []string{"grade"}}, `--entity "grade" is not a Moodle entity`},
		{night.ExtractOptions{Entities: []string{"moodle:gamma/users"}}, `is not a configured source`},
		{night.ExtractOptions{Entities: []string{"moodle:beta/courses"}, Sources: []string{"moodle:alpha"}}, "which --source does not select"},
		{night.ExtractOptions{Progress: "loud"}, `--progress "loud"`},
	} {
		_, err := x.extract(c.opts)
		var ue *night.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("extract %+v: %v, want a usage error %q", c.opts, err, c.want)
		}
	}
	if runs, err := ledger.Recent(context.Background(), x.db.Pool, 10); err != nil || len(runs) != 0 {
		t.Errorf("usage errors recorded %d runs (%v)", len(runs), err)
	}

	// A second run while one holds the lock is refused.
	r, err := ledger.Begin(context.Background(), x.db.Pool, "run", "test", "v", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = x.extract(night.ExtractOptions{})
	r.Finish(context.Background(), ledger.Succeeded, 0, nil)
	if err == nil || !strings.Contains(err.Error(), "another MIM run holds the warehouse run lock") {
		t.Errorf("locked: %v", err)
	}
	if x.sites["alpha"].extractions != 0 {
		t.Error("a source was read while another run held the lock")
	}

	// A source that returns with an entity left open: it is aborted and the
	// source reported failed.
	x.sites["beta"].leaveOpen = true
	_, err = x.extract(night.ExtractOptions{})
	if err == nil || !strings.Contains(err.Error(), "moodle:beta: the source returned without finishing 1 entit(ies), e.g. enrolments") {
		t.Errorf("unfinished entity: %v", err)
	}
	if n := x.count(`SELECT count(*) FROM raw.record WHERE instance = 'beta' AND entity = 'enrolments'`); n != 0 {
		t.Errorf("%d rows of an unfinished entity landed", n)
	}
	runs, err := ledger.Recent(context.Background(), x.db.Pool, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		steps, err := ledger.Steps(context.Background(), x.db.Pool, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range steps {
			if s.Status == ledger.Running {
				t.Errorf("run %d: step %s left running", r.ID, s.Key)
			}
		}
	}
}
