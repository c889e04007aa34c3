package load_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/load"
)

var enrolments = extract.EntityID{Source: "moodle", Instance: "main", Entity: "enrolments"}

// rec is a Moodle-like enrolment: key course:user, scope course.
func rec(course, user int, extra string) extract.Record {
	p := fmt.Sprintf(`{"id":%d,"username":"u%d","roles":[{"roleid":5,"shortname":"student"}],"mim_courseid":%d%s}`, user, user, course, extra)
	return extract.Record{Key: fmt.Sprintf("%d:%d", course, user), Scope: fmt.Sprint(course), Payload: json.RawMessage(p)}
}

// pass is what one run of a fixture source does to one entity.
type pass struct {
	records  []extract.Record
	complete []string
	failed   []string
}

type env struct {
	t  *testing.T
	db *pgtest.DB
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{t: t, db: pgtest.New(t)}
}

// begin starts a ledger run (it holds the run lock until finished).
func (e *env) begin() *ledger.Run {
	e.t.Helper()
	r, err := ledger.Begin(context.Background(), e.db.Pool, "extract", "test", "test", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { r.Finish(context.Background(), ledger.Succeeded, 0, nil) })
	return r
}

// load runs one pass through a fresh run and returns its run id and result.
func (e *env) load(id extract.EntityID, p pass, opts ...load.Option) (int64, extract.Result, error) {
	e.t.Helper()
	ctx := context.Background()
	run := e.begin()
	defer run.Finish(ctx, ledger.Succeeded, 0, nil)
	w, err := load.New(e.db.Pool, run, opts...).Entity(ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range p.records {
		if err := w.Write(ctx, r); err != nil {
			e.t.Fatal(err)
		}
	}
	for _, s := range p.complete {
		w.ScopeComplete(s)
	}
	for _, s := range p.failed {
		w.ScopeFailed(s, errors.New("reading course "+s+": timeout"))
	}
	res, err := w.Commit(ctx)
	return run.ID, res, err
}

func (e *env) mustLoad(id extract.EntityID, p pass, opts ...load.Option) (int64, extract.Result) {
	e.t.Helper()
	run, res, err := e.load(id, p, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	return run, res
}

type row struct {
	key, scope, payload        string
	first, changed, seen, xmin int64
	deleted                    *int64
	ctid                       string
}

func (e *env) rows(id extract.EntityID) map[string]row {
	e.t.Helper()
	rs, err := e.db.Pool.Query(context.Background(), `SELECT key, scope, payload::text, first_run, changed_run, seen_run,
		deleted_run, xmin::text::bigint, ctid::text FROM raw.record WHERE source = $1 AND instance = $2 AND entity = $3`,
		id.Source, id.Instance, id.Entity)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rs.Close()
	out := map[string]row{}
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.key, &r.scope, &r.payload, &r.first, &r.changed, &r.seen, &r.deleted, &r.xmin, &r.ctid); err != nil {
			e.t.Fatal(err)
		}
		out[r.key] = r
	}
	if err := rs.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) count(sql string, args ...any) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func courses(n, users int) pass {
	var p pass
	for c := 1; c <= n; c++ {
		for u := 1; u <= users; u++ {
			p.records = append(p.records, rec(c, u, ""))
		}
		p.complete = append(p.complete, fmt.Sprint(c))
	}
	return p
}

func TestFirstLoadAndUnchangedRerunWritesNothing(t *testing.T) {
	for _, mem := range []struct {
		name  string
		limit int
	}{{"in memory", 8 << 20}, {"spilled to disk", 512}} {
		t.Run(mem.name, func(t *testing.T) {
			e := newEnv(t)
			opt := load.WithMemoryLimit(mem.limit)
			p := courses(5, 40)
			run1, res := e.mustLoad(enrolments, p, opt)
			if res.In != 200 || res.New != 200 || res.Changed+res.Unchanged+res.Deleted != 0 || res.FailedScopes != nil {
				t.Fatalf("first load: %+v", res)
			}
			before := e.rows(enrolments)
			if len(before) != 200 {
				t.Fatalf("%d rows", len(before))
			}
			r := before["3:7"]
			if r.scope != "3" || r.first != run1 || r.changed != run1 || r.seen != run1 || r.deleted != nil {
				t.Errorf("row 3:7: %+v", r)
			}
			// jsonb keeps what was sent (it orders keys its own way).
			var got, want any
			json.Unmarshal([]byte(r.payload), &got)
			json.Unmarshal(rec(3, 7, "").Payload, &want)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("payload %s", r.payload)
			}
			if n := e.count(`SELECT count(*) FROM raw.record WHERE hash = sha256(convert_to($1, 'UTF8'))`,
				`{"id":7,"mim_courseid":3,"roles":[{"roleid":5,"shortname":"student"}],"username":"u7"}`); n != 1 {
				t.Errorf("the hash is not the SHA-256 of the canonical JSON (%d rows match)", n)
			}

			// The same records again, with keys reordered and spaced differently.
			again := courses(5, 40)
			for i, r := range again.records {
				var m map[string]any
				json.Unmarshal(r.Payload, &m)
				b, _ := json.MarshalIndent(m, "", "   ") // sorted and indented: different bytes, same content
				again.records[i].Payload = b
			}
			run2, res := e.mustLoad(enrolments, again, opt)
			if res.In != 200 || res.Unchanged != 200 || res.New+res.Changed+res.Deleted != 0 {
				t.Fatalf("unchanged re-run: %+v", res)
			}
			after := e.rows(enrolments)
			for k, b := range before {
				a := after[k]
				// Not rewritten: same tuple (ctid) written by the same transaction (xmin).
				if a.xmin != b.xmin || a.ctid != b.ctid || a.changed != run1 || a.seen != run1 {
					t.Fatalf("row %s was rewritten by the unchanged run %d: before %+v after %+v", k, run2, b, a)
				}
			}
			if n := e.count(`SELECT count(*) FROM raw.record_history`); n != 0 {
				t.Errorf("%d history rows after an unchanged run", n)
			}
			// Seen is implicit: every scope was read completely in run 2.
			if n := e.count(`SELECT count(*) FROM raw.record r JOIN raw.scope_read s USING (source, instance, entity, scope)
				WHERE greatest(r.seen_run, s.complete_run) = $1`, run2); n != 200 {
				t.Errorf("%d rows seen in run 2 by greatest(seen_run, complete_run), want 200", n)
			}
		})
	}
}

func TestChangedPayloadMovesOldVersionToHistory(t *testing.T) {
	e := newEnv(t)
	run1, _ := e.mustLoad(enrolments, courses(2, 3))
	before := e.rows(enrolments)
	p := courses(2, 3)
	p.records[1] = rec(1, 2, `,"mim_suspended":true`) // 1:2 changes
	run2, res := e.mustLoad(enrolments, p)
	if res.Changed != 1 || res.Unchanged != 5 || res.New != 0 || res.Deleted != 0 {
		t.Fatalf("%+v", res)
	}
	after := e.rows(enrolments)
	if a := after["1:2"]; a.changed != run2 || a.seen != run2 || a.first != run1 || !strings.Contains(a.payload, `"mim_suspended": true`) {
		t.Errorf("changed row: %+v", a)
	}
	for k, b := range before {
		if k != "1:2" && after[k].xmin != b.xmin {
			t.Errorf("unchanged row %s rewritten", k)
		}
	}
	var payload string
	var from, to int64
	var deleted *int64
	err := e.db.Pool.QueryRow(context.Background(), `SELECT payload::text, valid_from_run, valid_to_run, deleted_run
		FROM raw.record_history WHERE key = '1:2'`).Scan(&payload, &from, &to, &deleted)
	if err != nil {
		t.Fatal(err)
	}
	if from != run1 || to != run2 || deleted != nil || strings.Contains(payload, "mim_suspended") {
		t.Errorf("history: %s %d %d %v", payload, from, to, deleted)
	}
	if n := e.count(`SELECT count(*) FROM raw.record_history`); n != 1 {
		t.Errorf("%d history rows", n)
	}
}

func TestDeletionOnlyInsideCompletedScopes(t *testing.T) {
	e := newEnv(t)
	_, _ = e.mustLoad(enrolments, courses(4, 5))
	before := e.rows(enrolments)

	// Run 2 reads course 1 completely (users 4 and 5 left), course 2 fails
	// half-way (only user 1 read, changed), course 3 is never declared (only
	// users 1-2 read), and course 4 is declared complete with no records at all.
	p := pass{complete: []string{"1", "4"}, failed: []string{"2"}}
	for u := 1; u <= 3; u++ {
		p.records = append(p.records, rec(1, u, ""))
	}
	p.records = append(p.records, rec(2, 1, `,"changed":1`), rec(2, 99, ""), rec(3, 1, ""), rec(3, 2, ""))
	run2, res := e.mustLoad(enrolments, p)
	if res.Deleted != 7 || res.New != 0 || res.Changed != 0 || res.Unchanged != 3 || res.In != 7 {
		t.Errorf("result: %+v", res)
	}
	if fmt.Sprint(res.FailedScopes) != "[2 3]" {
		t.Errorf("failed scopes %v", res.FailedScopes)
	}
	after := e.rows(enrolments)
	if _, ok := after["2:99"]; ok {
		t.Error("a record of a failed scope was inserted")
	}
	for k, b := range before {
		a := after[k]
		course := strings.SplitN(k, ":", 2)[0]
		switch {
		case course == "1" && (k == "1:4" || k == "1:5"), course == "4":
			if a.deleted == nil || *a.deleted != run2 {
				t.Errorf("%s should be deleted in run %d: %+v", k, run2, a)
			}
		default:
			if a.deleted != nil || a.xmin != b.xmin || a.payload != b.payload {
				t.Errorf("%s should be untouched: before %+v after %+v", k, b, a)
			}
		}
	}

	// The ledger step says what happened and why.
	steps, err := ledger.Steps(context.Background(), e.db.Pool, run2)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 1 {
		t.Fatalf("%d steps", len(steps))
	}
	s := steps[0]
	if s.Status != ledger.Partial || s.Key.Stage != "extract" || s.Key.Source != "moodle" || s.Key.Instance != "main" ||
		s.Key.Entity != "enrolments" || s.Counts != (ledger.Counts{In: 7, Deleted: 7, Unchanged: 3, Errors: 2}) {
		t.Errorf("step: %+v", s)
	}
	var detail string
	e.db.Pool.QueryRow(context.Background(), `SELECT detail::text FROM ctl.run_step WHERE run_id = $1`, run2).Scan(&detail)
	for _, want := range []string{`"scope": "2"`, "reading course 2: timeout", `"scope": "3"`, "neither complete nor failed", `"records_not_applied": 4`} {
		if !strings.Contains(detail, want) {
			t.Errorf("detail lacks %s: %s", want, detail)
		}
	}
	var complete, failed *int64
	var msg *string
	e.db.Pool.QueryRow(context.Background(), `SELECT complete_run, failed_run, error FROM raw.scope_read WHERE scope = '2'`).Scan(&complete, &failed, &msg)
	if complete == nil || failed == nil || *failed != run2 || *complete == run2 || msg == nil || !strings.Contains(*msg, "timeout") {
		t.Errorf("scope_read of the failed scope: %v %v %v", complete, failed, msg)
	}
}

func TestKeyComingBackAfterDeletionIsChanged(t *testing.T) {
	e := newEnv(t)
	e.mustLoad(enrolments, courses(1, 3))
	p := courses(1, 3)
	p.records = p.records[:2] // 1:3 leaves
	run2, res := e.mustLoad(enrolments, p)
	if res.Deleted != 1 {
		t.Fatalf("%+v", res)
	}
	// It comes back, same payload.
	run3, res := e.mustLoad(enrolments, courses(1, 3))
	if res.Changed != 1 || res.Unchanged != 2 || res.New != 0 || res.Deleted != 0 {
		t.Fatalf("%+v", res)
	}
	r := e.rows(enrolments)["1:3"]
	if r.deleted != nil || r.changed != run3 || r.seen != run3 {
		t.Errorf("returned row: %+v", r)
	}
	var deleted, to int64
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT deleted_run, valid_to_run FROM raw.record_history WHERE key = '1:3'`).
		Scan(&deleted, &to); err != nil {
		t.Fatal(err)
	}
	if deleted != run2 || to != run3 {
		t.Errorf("history keeps the deleted version: deleted %d to %d", deleted, to)
	}
}

func TestSamePayloadUnderAnotherScopeMovesScope(t *testing.T) {
	e := newEnv(t)
	groups := extract.EntityID{Source: "moodle", Instance: "main", Entity: "groups"}
	mk := func(scope string) extract.Record {
		return extract.Record{Key: "g1", Scope: scope, Payload: json.RawMessage(`{"id":1,"name":"A"}`)}
	}
	e.mustLoad(groups, pass{records: []extract.Record{mk("10")}, complete: []string{"10"}})
	run2, res := e.mustLoad(groups, pass{records: []extract.Record{mk("11")}, complete: []string{"10", "11"}})
	if res.Unchanged != 1 || res.Deleted != 0 || res.Changed != 0 {
		t.Fatalf("%+v", res)
	}
	r := e.rows(groups)["g1"]
	if r.scope != "11" || r.seen != run2 || r.changed == run2 || r.deleted != nil {
		t.Errorf("%+v", r)
	}
}

func TestAbortLeavesRawUntouched(t *testing.T) {
	e := newEnv(t)
	e.mustLoad(enrolments, courses(3, 10))
	before := e.rows(enrolments)
	ctx := context.Background()
	run := e.begin()
	w, err := load.New(e.db.Pool, run, load.WithMemoryLimit(256)).Entity(ctx, enrolments)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range courses(3, 5).records {
		r.Payload = json.RawMessage(`{"changed":true}`)
		if err := w.Write(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	w.ScopeComplete("1")
	w.Abort()
	w.Abort() // twice is harmless
	if _, err := w.Commit(ctx); !errors.Is(err, load.ErrClosed) {
		t.Errorf("commit after abort: %v", err)
	}
	if err := w.Write(ctx, rec(1, 1, "")); !errors.Is(err, load.ErrClosed) {
		t.Errorf("write after abort: %v", err)
	}
	after := e.rows(enrolments)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Error("abort changed raw.record")
	}
	steps, _ := ledger.Steps(ctx, e.db.Pool, run.ID)
	if len(steps) != 1 || steps[0].Status != ledger.Failed || steps[0].Error == nil || !strings.Contains(*steps[0].Error, "aborted") {
		t.Errorf("step of an aborted entity: %+v", steps)
	}
}

func TestConcurrentWritersAndEntities(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	run := e.begin()
	var mu sync.Mutex
	var finished []load.Report
	l := load.New(e.db.Pool, run, load.WithMemoryLimit(4096), load.WithOnFinish(func(r load.Report) {
		mu.Lock()
		finished = append(finished, r)
		mu.Unlock()
	}))
	const entities, courses, users = 3, 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, entities*courses)
	for en := 0; en < entities; en++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := extract.EntityID{Source: "moodle", Instance: "main", Entity: fmt.Sprintf("e%d", en)}
			w, err := l.Entity(ctx, id)
			if err != nil {
				errs <- err
				return
			}
			var cw sync.WaitGroup
			for c := 1; c <= courses; c++ {
				cw.Add(1)
				go func() {
					defer cw.Done()
					for u := 1; u <= users; u++ {
						if err := w.Write(ctx, rec(c, u, "")); err != nil {
							errs <- err
							return
						}
					}
					w.ScopeComplete(fmt.Sprint(c))
				}()
			}
			cw.Wait()
			res, err := w.Commit(ctx)
			if err == nil && (res.New != courses*users || res.In != courses*users) {
				err = fmt.Errorf("%s: %+v", id, res)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := e.count(`SELECT count(*) FROM raw.record`); n != entities*courses*users {
		t.Errorf("%d rows", n)
	}
	if n := e.count(`SELECT count(DISTINCT (entity, key)) FROM raw.record`); n != entities*courses*users {
		t.Errorf("%d distinct keys", n)
	}
	if len(finished) != entities || len(l.Reports()) != entities {
		t.Errorf("%d finished, %d reports", len(finished), len(l.Reports()))
	}
	for _, r := range l.Reports() {
		if r.Status != ledger.Succeeded || r.Result.New != courses*users || r.Err != nil {
			t.Errorf("report %+v", r)
		}
	}
}

func TestSecondWriterForAnOpenEntityIsRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	l := load.New(e.db.Pool, e.begin())
	w, err := l.Entity(ctx, enrolments)
	if err != nil {
		t.Fatal(err)
	}
	var inUse *load.InUseError
	if _, err := l.Entity(ctx, enrolments); !errors.As(err, &inUse) {
		t.Errorf("second writer: %v", err)
	}
	w.Abort()
	w2, err := l.Entity(ctx, enrolments)
	if err != nil {
		t.Fatalf("after abort the entity can be opened again: %v", err)
	}
	w2.Abort()
	if _, err := l.Entity(ctx, extract.EntityID{Source: "moodle", Entity: "x"}); err == nil {
		t.Error("an entity without an instance was accepted")
	}
}

func TestDuplicateKeysKeepTheLastWrite(t *testing.T) {
	e := newEnv(t)
	p := courses(1, 3)
	p.records = append(p.records, rec(1, 2, ""))                            // same payload again: harmless
	p.records = append(p.records, rec(1, 3, `,"v":2`), rec(1, 3, `,"v":3`)) // different payloads
	run, res := e.mustLoad(enrolments, p)
	if res.In != 6 || res.New != 3 || res.Unchanged != 0 {
		t.Fatalf("%+v", res)
	}
	if r := e.rows(enrolments)["1:3"]; !strings.Contains(r.payload, `"v": 3`) {
		t.Errorf("kept %s, want the last write", r.payload)
	}
	steps, _ := ledger.Steps(context.Background(), e.db.Pool, run)
	if steps[0].Status != ledger.Partial || steps[0].Counts.Errors != 1 {
		t.Errorf("step %+v", steps[0])
	}
	var detail string
	e.db.Pool.QueryRow(context.Background(), `SELECT detail::text FROM ctl.run_step WHERE run_id = $1`, run).Scan(&detail)
	if !strings.Contains(detail, `"conflicting_duplicates": ["1:3"]`) || !strings.Contains(detail, `"duplicate_keys": 3`) {
		t.Errorf("detail %s", detail)
	}
	// Next run with clean data: 1:3 changes back to the plain record.
	_, res = e.mustLoad(enrolments, courses(1, 3))
	if res.Changed != 1 || res.Unchanged != 2 {
		t.Errorf("%+v", res)
	}
}

func TestBadRecordsAreRefusedAndBadRowsCounted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	run := e.begin()
	w, err := load.New(e.db.Pool, run).Entity(ctx, enrolments)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []extract.Record{
		{Key: "", Scope: "1", Payload: json.RawMessage(`{}`)},
		{Key: "1:1", Scope: "1", Payload: json.RawMessage(`[1]`)},
		{Key: "1:2", Scope: "1", Payload: json.RawMessage(`{"a":"\u0000"}`)},
		{Key: "1:\x00", Scope: "1", Payload: json.RawMessage(`{}`)},
		{Key: "1:3", Scope: "\xff", Payload: json.RawMessage(`{}`)},
		{Key: strings.Repeat("k", 1025), Scope: "1", Payload: json.RawMessage(`{}`)},
	} {
		var re *load.RecordError
		if err := w.Write(ctx, r); !errors.As(err, &re) || re.Key != r.Key {
			t.Errorf("Write(%q, %s) = %v", r.Key, r.Payload, err)
		}
	}
	if err := w.Write(ctx, rec(1, 4, "")); err != nil {
		t.Fatal(err)
	}
	w.RowError("S123", errors.New("column BIRTH_DATE: 31/02/2001 is not a date"))
	w.ScopeComplete("1")
	res, err := w.Commit(ctx)
	if err != nil || res.New != 1 || res.In != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	steps, _ := ledger.Steps(ctx, e.db.Pool, run.ID)
	if steps[0].Status != ledger.Partial || steps[0].Counts.Errors != 1 {
		t.Errorf("%+v", steps[0])
	}
	var detail string
	e.db.Pool.QueryRow(ctx, `SELECT detail::text FROM ctl.run_step WHERE run_id = $1`, run.ID).Scan(&detail)
	if !strings.Contains(detail, `"key": "S123"`) || !strings.Contains(detail, "BIRTH_DATE") {
		t.Errorf("detail %s", detail)
	}
}

// students is a SITS-like full snapshot of n keys (scope "").
func students(from, to int) pass {
	var p pass
	for i := from; i < to; i++ {
		p.records = append(p.records, extract.Record{Key: fmt.Sprint(i), Payload: json.RawMessage(`{"x":1}`)})
	}
	p.complete = []string{""}
	return p
}

var sitsStudents = extract.EntityID{Source: "sits", Instance: "sits", Entity: "student"}

// arm arms an override as an operator would.
func (e *env) arm(key string) {
	e.t.Helper()
	if _, err := settings.Set(context.Background(), e.db.Pool, key, "true", "ops", "the source really lost them", nil); err != nil {
		e.t.Fatal(err)
	}
}

// An empty answer where the last complete read was not empty is not
// believed: nothing is deleted, the read is refused (exit 3) and recorded,
// until an operator accepts it once.
func TestEmptyCompleteSnapshotIsSuspect(t *testing.T) {
	e := newEnv(t)
	e.mustLoad(sitsStudents, students(0, 5))
	run, res, err := e.load(sitsStudents, pass{complete: []string{""}})
	var se *load.SuspectError
	if !errors.As(err, &se) || se.ExitCode() != 3 || se.Live != 5 || se.Written != 0 || res.Deleted != 0 ||
		!strings.Contains(err.Error(), "came back empty where its last complete read had 5 records") ||
		!strings.Contains(err.Error(), "completeness_override") {
		t.Fatalf("empty read: %+v %v", res, err)
	}
	if n := e.count(`SELECT count(*) FROM raw.record WHERE deleted_run IS NULL`); n != 5 {
		t.Errorf("%d live rows, want the 5 of the last complete read", n)
	}
	if n := e.count(`SELECT count(*) FROM ctl.run_step WHERE run_id = $1 AND status = 'refused'`, run); n != 1 {
		t.Error("the step is not refused")
	}
	if n := e.count(`SELECT count(*) FROM ctl.guard_event WHERE run_id = $1 AND guard = 'completeness' AND decision = 'refused'
		AND subject = 'sits/student' AND previous = 5 AND current = 0`, run); n != 1 {
		t.Error("the refusal is not in ctl.guard_event")
	}
	// Accepted once: the read lands, deletions included, and the override lapses.
	e.arm("completeness_override")
	run, res = e.mustLoad(sitsStudents, pass{complete: []string{""}})
	if res.Deleted != 5 {
		t.Errorf("accepted read: %+v", res)
	}
	if n := e.count(`SELECT count(*) FROM ctl.guard_event WHERE run_id = $1 AND guard = 'completeness' AND decision = 'overridden'`, run); n != 1 {
		t.Error("the acceptance is not in ctl.guard_event")
	}
	if n := e.count(`SELECT count(*) FROM ctl.settings WHERE key = 'completeness_override' AND value = 'false'`); n != 1 {
		t.Error("completeness_override did not lapse")
	}
	// A source may switch the judgement off.
	e2 := newEnv(t)
	e2.mustLoad(sitsStudents, students(0, 5))
	if _, res := e2.mustLoad(sitsStudents, pass{complete: []string{""}}, load.WithShrinkLimits(func(extract.EntityID) int { return load.NeverSuspect })); res.Deleted != 5 {
		t.Errorf("with the judgement off: %+v", res)
	}
	// And with the scope failed instead, nothing would have gone.
	e3 := newEnv(t)
	e3.mustLoad(sitsStudents, students(0, 5))
	_, res = e3.mustLoad(sitsStudents, pass{failed: []string{""}})
	if res.Deleted != 0 || len(res.FailedScopes) != 1 || res.FailedScopes[0] != "" {
		t.Errorf("%+v", res)
	}
	if n := e3.count(`SELECT count(*) FROM raw.record WHERE deleted_run IS NULL`); n != 5 {
		t.Errorf("%d live rows", n)
	}
}

// A read that would delete more than the entity's shrink limit of its live
// records lands nothing at all (not even its new and changed records); at
// the limit exactly, or below minShrinkRows deletions, it is believed.
func TestShrinkPastTheLimitIsSuspect(t *testing.T) {
	e := newEnv(t)
	e.mustLoad(sitsStudents, students(0, 200)) // sits/student: limit 10%
	// 21 of 200 go (10.5%), one new key arrives and one changes.
	p := students(21, 200)
	p.records = append(p.records, extract.Record{Key: "new", Payload: json.RawMessage(`{"x":1}`)})
	p.records[0].Payload = json.RawMessage(`{"x":2}`)
	_, res, err := e.load(sitsStudents, p)
	var se *load.SuspectError
	if !errors.As(err, &se) || se.Deleted != 21 || se.Live != 200 || se.Limit != 10 ||
		!strings.Contains(err.Error(), "would delete 21 of its 200 records (10.5%), more than its shrink limit 10%") {
		t.Fatalf("a 10.5%% shrink: %+v %v", res, err)
	}
	if n := e.count(`SELECT count(*) FROM raw.record WHERE deleted_run IS NULL AND payload = '{"x":1}'`); n != 200 {
		t.Errorf("the suspect read landed something: %d rows as they were, want 200", n)
	}
	// Exactly 10% is within the limit.
	_, res = e.mustLoad(sitsStudents, students(20, 200))
	if res.Deleted != 20 {
		t.Errorf("a 10%% shrink: %+v", res)
	}
	// Below minShrinkRows deletions the share does not count: 9 of 180 is 5%,
	// and 9 of a 12-record entity would be 75%.
	small := extract.EntityID{Source: "sits", Instance: "sits", Entity: "faculties"}
	e.mustLoad(small, students(0, 12), load.WithShrinkLimits(func(extract.EntityID) int { return 10 }))
	if _, res := e.mustLoad(small, students(9, 12), load.WithShrinkLimits(func(extract.EntityID) int { return 10 })); res.Deleted != 9 {
		t.Errorf("9 deletions of 12: %+v", res)
	}
}

// A key whose row could not be read keeps its last good version: it is
// never taken for deleted, in any source.
func TestBadRowKeysAreNeverDeleted(t *testing.T) {
	e := newEnv(t)
	e.mustLoad(sitsStudents, students(0, 50))
	ctx := context.Background()
	run := e.begin()
	w, err := load.New(e.db.Pool, run).Entity(ctx, sitsStudents)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range students(0, 48).records {
		if r.Key == "7" {
			w.RowError("7", errors.New("column student_name: not valid UTF-8 (byte 0xE9 at offset 3)"))
			continue
		}
		if err := w.Write(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	w.ScopeComplete("")
	res, err := w.Commit(ctx)
	if err != nil || res.Deleted != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	live := e.rows(sitsStudents)
	for _, k := range []string{"7", "48", "49"} {
		if gone := live[k].deleted != nil; gone != (k != "7") {
			t.Errorf("key %s deleted: %v", k, gone)
		}
	}
	var detail string
	e.db.Pool.QueryRow(ctx, `SELECT detail::text FROM ctl.run_step WHERE run_id = $1`, run.ID).Scan(&detail)
	if !strings.Contains(detail, `"kept_bad_keys": 1`) {
		t.Errorf("detail %s", detail)
	}
}

// A scope declared both complete and failed is failed: a Moodle course
// whose read succeeded but one of whose records the sink refused is
// completed by the extractor and failed by the refusal, in either order.
func TestScopeCompleteAndFailedIsFailed(t *testing.T) {
	for _, failFirst := range []bool{true, false} {
		e := newEnv(t)
		e.mustLoad(enrolments, courses(2, 5))
		ctx := context.Background()
		run := e.begin()
		w, err := load.New(e.db.Pool, run).Entity(ctx, enrolments)
		if err != nil {
			t.Fatal(err)
		}
		for c := 1; c <= 2; c++ {
			for u := 1; u <= 2; u++ {
				if err := w.Write(ctx, rec(c, u, "")); err != nil {
					t.Fatal(err)
				}
			}
		}
		fail := func() { w.ScopeFailed("1", errors.New("record 1:3 could not be stored")) }
		if failFirst {
			fail()
			w.ScopeComplete("1")
		} else {
			w.ScopeComplete("1")
			fail()
		}
		w.ScopeComplete("2")
		res, err := w.Commit(ctx)
		if err != nil || res.Deleted != 3 || fmt.Sprint(res.FailedScopes) != "[1]" {
			t.Errorf("fail first %v: %+v %v", failFirst, res, err)
		}
		if n := e.count(`SELECT count(*) FROM raw.record WHERE scope = '1' AND deleted_run IS NULL`); n != 5 {
			t.Errorf("fail first %v: course 1 keeps %d of its 5 rows", failFirst, n)
		}
	}
}

func TestLedgerStepsOfARun(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	run := e.begin()
	l := load.New(e.db.Pool, run)
	for _, name := range []string{"users", "courses"} {
		w, err := l.Entity(ctx, extract.EntityID{Source: "moodle", Instance: "main", Entity: name})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(ctx, extract.Record{Key: "1", Payload: json.RawMessage(`{"id":1}`)})
		w.ScopeComplete("")
		if _, err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	steps, err := ledger.Steps(ctx, e.db.Pool, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range steps {
		names = append(names, s.Key.String()+"="+s.Status)
		if s.Finished == nil || s.Counts.In != 1 || s.Counts.New != 1 {
			t.Errorf("%+v", s)
		}
	}
	sort.Strings(names)
	if fmt.Sprint(names) != "[extract/moodle/main/courses=succeeded extract/moodle/main/users=succeeded]" {
		t.Errorf("%v", names)
	}
}

// A writer lists the scopes holding live rows (extract.ScopeLister), as
// they stood before its run: a source closes those it no longer has.
func TestLiveScopes(t *testing.T) {
	e := newEnv(t)
	_, _ = e.mustLoad(enrolments, courses(3, 2))
	// Course 3 emptied: its scope holds no live row any more.
	_, _ = e.mustLoad(enrolments, pass{records: courses(2, 2).records, complete: []string{"1", "2", "3"}})
	ctx := context.Background()
	run := e.begin()
	w, err := load.New(e.db.Pool, run).Entity(ctx, enrolments)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := w.Write(ctx, rec(7, 1, "")); err != nil {
		t.Fatal(err)
	}
	scopes, err := w.(extract.ScopeLister).LiveScopes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(scopes)
	if fmt.Sprint(scopes) != "[1 2]" {
		t.Errorf("live scopes %v, want [1 2]", scopes)
	}
}
