package load

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sort"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/ledger"
)

// Stage is the ledger stage of every step the loader records.
const Stage = "extract"

// maxDetailRows bounds how many bad rows and failed scopes a step's detail lists.
const maxDetailRows = 20

// Loader lands the records of a run's sources in raw.record. It implements
// extract.Sink: every entity a source opens gets its own writer, its own
// ctl.run_step, and one transaction when it commits. A Loader is safe for
// concurrent use by several sources.
type Loader struct {
	pool     *pgxpool.Pool
	run      *ledger.Run
	logger   *slog.Logger
	tempDir  string
	memLimit int
	workMem  string
	onFinish func(Report)
	shrink   func(extract.EntityID) int
	by       string

	mu      sync.Mutex
	open    map[extract.EntityID]*writer
	reports []Report
}

// Option configures a Loader.
type Option func(*Loader)

// WithLogger logs each entity's outcome at debug level (the ledger and the
// command's summary are where outcomes are reported).
func WithLogger(lg *slog.Logger) Option { return func(l *Loader) { l.logger = lg } }

// WithTempDir is where writers spill records that do not fit in memory
// (default: the system's temporary directory). Files are unlinked at once.
func WithTempDir(dir string) Option { return func(l *Loader) { l.tempDir = dir } }

// WithMemoryLimit is how many bytes of records one writer keeps in memory
// before it spills them to a temporary file (default 8 MiB).
func WithMemoryLimit(n int) Option { return func(l *Loader) { l.memLimit = n } }

// WithWorkMem sets PostgreSQL's work_mem for the merge transaction (default
// "128MB"), so the hash join of a million keys stays in memory.
func WithWorkMem(s string) Option { return func(l *Loader) { l.workMem = s } }

// WithOnFinish calls f when an entity commits or aborts (from the goroutine
// that committed or aborted it), e.g. to mark it done on a progress display.
func WithOnFinish(f func(Report)) Option { return func(l *Loader) { l.onFinish = f } }

// New returns a loader that records into run: raw.record's first_run,
// changed_run, seen_run and deleted_run take run.ID, and each entity gets a
// ctl.run_step of stage "extract".
func New(pool *pgxpool.Pool, run *ledger.Run, opts ...Option) *Loader {
	l := &Loader{pool: pool, run: run, memLimit: 8 << 20, workMem: "128MB", open: map[extract.EntityID]*writer{}}
	for _, o := range opts {
		o(l)
	}
	return l
}

// RunID is the run the loader records into (extract.RunIdentifier).
func (l *Loader) RunID() int64 { return l.run.ID }

var _ extract.RunIdentifier = (*Loader)(nil)

// Report is what happened to one entity, for the command's summary table.
type Report struct {
	ID      extract.EntityID
	Status  string // ledger.Succeeded, ledger.Partial (failed scopes or bad rows) or ledger.Failed
	Result  extract.Result
	Errors  int64 // bad rows, failed scopes and conflicting duplicate keys
	Started time.Time
	Elapsed time.Duration
	Err     error // why it failed
}

// Reports returns the entities finished so far, in the order they finished.
func (l *Loader) Reports() []Report {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Report(nil), l.reports...)
}

func (l *Loader) finished(r Report) {
	l.mu.Lock()
	delete(l.open, r.ID)
	l.reports = append(l.reports, r)
	l.mu.Unlock()
	if l.logger != nil {
		l.logger.Debug("entity loaded", "run_id", l.run.ID, "stage", Stage, "source", r.ID.Source, "instance", r.ID.Instance,
			"entity", r.ID.Entity, "status", r.Status, "rows", r.Result.In, "new", r.Result.New, "changed", r.Result.Changed,
			"deleted", r.Result.Deleted, "errors", r.Errors)
	}
	if l.onFinish != nil {
		l.onFinish(r)
	}
}

// Entity opens the writer of one entity and records the start of its step.
func (l *Loader) Entity(ctx context.Context, id extract.EntityID) (extract.EntityWriter, error) {
	for _, f := range []struct{ name, v string }{{"source", id.Source}, {"instance", id.Instance}, {"entity", id.Entity}} {
		if f.v == "" || !utf8.ValidString(f.v) {
			return nil, fmt.Errorf("loading %s: the entity's %s must be non-empty text", id, f.name)
		}
	}
	l.mu.Lock()
	if l.open[id] != nil {
		l.mu.Unlock()
		return nil, &InUseError{Entity: id}
	}
	l.open[id] = &writer{} // reserved while the step is recorded
	l.mu.Unlock()
	step, err := l.run.Step(ctx, ledger.StepKey{Stage: Stage, Source: id.Source, Instance: id.Instance, Entity: id.Entity})
	if err != nil {
		l.mu.Lock()
		delete(l.open, id)
		l.mu.Unlock()
		return nil, fmt.Errorf("loading %s: %w", id, err)
	}
	w := &writer{
		l:        l,
		id:       id,
		step:     step,
		started:  time.Now(),
		keys:     spool{dir: l.tempDir, limit: l.memLimit / 8},
		payloads: spool{dir: l.tempDir, limit: l.memLimit},
		seed:     maphash.MakeSeed(),
		seen:     map[uint64]struct{}{},
		scopes:   map[string]*scopeState{},
		badKeys:  map[string]struct{}{},
	}
	l.mu.Lock()
	l.open[id] = w
	l.mu.Unlock()
	return w, nil
}

// AbortUnfinished aborts the writers still open whose entity match selects
// and returns their entities: a source that returned without committing or
// aborting an entity must not leave its step running. Their steps record
// that the source never finished them.
func (l *Loader) AbortUnfinished(match func(extract.EntityID) bool) []extract.EntityID {
	l.mu.Lock()
	var ws []*writer
	for id, w := range l.open {
		if w.l != nil && match(id) {
			ws = append(ws, w)
		}
	}
	l.mu.Unlock()
	sort.Slice(ws, func(i, j int) bool { return ws[i].id.String() < ws[j].id.String() })
	var ids []extract.EntityID
	for _, w := range ws {
		if w.abort(errors.New("the source ended without committing or aborting this entity: nothing was loaded")) {
			ids = append(ids, w.id)
		}
	}
	return ids
}

type writerState int

const (
	open writerState = iota
	committing
	closed
)

type scopeState struct {
	records  int64
	complete bool
	failed   bool
	err      string
}

type badRow struct {
	Key   string `json:"key"`
	Error string `json:"error"`
}

// writer is one entity's EntityWriter. Records go to two spools: the keys
// (key, scope, hash, payload length) and the canonical payloads, so a
// commit can send the keys alone first and the payloads only of records
// that are new or changed.
type writer struct {
	l       *Loader
	id      extract.EntityID
	step    *ledger.Step
	started time.Time

	mu       sync.Mutex
	state    writerState
	keys     spool
	payloads spool
	n        int64
	seed     maphash.Seed
	// seen holds a 64-bit hash of every key (about 20 bytes a record), so a
	// key written twice is noticed without keeping the keys; only then does
	// the commit pay for removing duplicates in SQL.
	seen        map[uint64]struct{}
	possibleDup bool
	scopes      map[string]*scopeState
	badRows     []badRow
	badRowCount int64
	// badKeys are the keys of every row that could not be read: they keep
	// their last good version and are never taken for deleted.
	badKeys map[string]struct{}
	recBuf  []byte
}

var canonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// maxKeyBytes keeps keys and scopes well inside a btree index entry.
const maxKeyBytes = 1024

func checkText(s string) error {
	if len(s) > maxKeyBytes {
		return fmt.Errorf("longer than %d bytes", maxKeyBytes)
	}
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return errors.New("contains a NUL byte")
		}
	}
	return nil
}

// Write adds one record. A record with an empty or invalid key, an invalid
// scope or a payload that is not a JSON object is refused with a
// *RecordError and not written.
func (w *writer) Write(ctx context.Context, r extract.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.Key == "" {
		return &RecordError{Entity: w.id, Key: r.Key, Field: "key", Err: errors.New("empty")}
	}
	if err := checkText(r.Key); err != nil {
		return &RecordError{Entity: w.id, Key: r.Key, Field: "key", Err: err}
	}
	if err := checkText(r.Scope); err != nil {
		return &RecordError{Entity: w.id, Key: r.Key, Field: "scope", Err: err}
	}
	bp := canonBufs.Get().(*[]byte)
	defer canonBufs.Put(bp)
	canon, err := Canonical((*bp)[:0], r.Payload)
	*bp = canon[:0]
	if err != nil {
		return &RecordError{Entity: w.id, Key: r.Key, Field: "payload", Err: err}
	}
	sum := sha256.Sum256(canon)
	kh := maphash.String(w.seed, r.Key)

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != open {
		return ErrClosed
	}
	b := w.recBuf[:0]
	b = binary.AppendUvarint(b, uint64(len(r.Key)))
	b = append(b, r.Key...)
	b = binary.AppendUvarint(b, uint64(len(r.Scope)))
	b = append(b, r.Scope...)
	b = append(b, sum[:]...)
	b = binary.AppendUvarint(b, uint64(len(canon)))
	w.recBuf = b
	if err := w.keys.write(b); err != nil {
		return fmt.Errorf("loading %s: %w", w.id, err)
	}
	if err := w.payloads.write(canon); err != nil {
		return fmt.Errorf("loading %s: %w", w.id, err)
	}
	w.n++
	w.scope(r.Scope).records++
	if _, dup := w.seen[kh]; dup {
		w.possibleDup = true
	} else {
		w.seen[kh] = struct{}{}
	}
	return nil
}

func (w *writer) scope(s string) *scopeState {
	st := w.scopes[s]
	if st == nil {
		st = &scopeState{}
		w.scopes[s] = st
	}
	return st
}

// ScopeComplete declares that every record of scope has been written.
func (w *writer) ScopeComplete(scope string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state == open {
		w.scope(scope).complete = true
	}
}

// ScopeFailed declares that scope could not be read completely; it wins over
// ScopeComplete for the same scope.
func (w *writer) ScopeFailed(scope string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != open {
		return
	}
	st := w.scope(scope)
	st.failed = true
	if err != nil && st.err == "" {
		st.err = err.Error()
	}
}

// LiveScopes lists the entity's non-empty scopes that hold live rows
// (extract.ScopeLister).
func (w *writer) LiveScopes(ctx context.Context) ([]string, error) {
	rows, err := w.l.pool.Query(ctx, `SELECT DISTINCT scope FROM raw.record
		WHERE source = $1 AND instance = $2 AND entity = $3 AND deleted_run IS NULL AND scope <> ''`,
		w.id.Source, w.id.Instance, w.id.Entity)
	if err != nil {
		return nil, fmt.Errorf("listing the live scopes of %s: %w", w.id, err)
	}
	scopes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing the live scopes of %s: %w", w.id, err)
	}
	return scopes, nil
}

var _ extract.ScopeLister = (*writer)(nil)

// RowError records a source row that could not be read. Its key, as far
// as it could be read, keeps its last good version: a row that could not
// be read never deletes.
func (w *writer) RowError(key string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != open {
		return
	}
	if key != "" {
		w.badKeys[key] = struct{}{}
	}
	w.badRowCount++
	if len(w.badRows) < maxDetailRows {
		msg := "unreadable"
		if err != nil {
			msg = err.Error()
		}
		w.badRows = append(w.badRows, badRow{Key: truncate(key, 200), Error: truncate(msg, 500)})
	}
}

// Abort discards everything written; raw is left as it was.
func (w *writer) Abort() {
	w.abort(errors.New("aborted by the source: nothing was loaded, raw keeps its last state"))
}

func (w *writer) abort(err error) bool {
	w.mu.Lock()
	if w.state != open {
		w.mu.Unlock()
		return false
	}
	w.state = closed
	w.keys.close()
	w.payloads.close()
	w.seen = nil
	w.mu.Unlock()
	counts := ledger.Counts{In: w.n, Errors: w.badRowCount}
	_ = w.step.Finish(context.Background(), ledger.Failed, counts, w.detail(nil, nil), err)
	w.l.finished(Report{ID: w.id, Status: ledger.Failed, Result: extract.Result{In: w.n}, Errors: w.badRowCount,
		Started: w.started, Elapsed: time.Since(w.started), Err: err})
	return true
}

// Commit lands everything written in one transaction.
func (w *writer) Commit(ctx context.Context) (extract.Result, error) {
	w.mu.Lock()
	if w.state != open {
		w.mu.Unlock()
		return extract.Result{}, ErrClosed
	}
	w.state = committing
	w.mu.Unlock()

	plan := w.plan()
	out, err := w.merge(ctx, plan)
	w.mu.Lock()
	w.state = closed
	w.keys.close()
	w.payloads.close()
	w.seen = nil
	w.mu.Unlock()

	res := extract.Result{In: w.n, FailedScopes: plan.failedNames()}
	errCount := w.badRowCount + int64(len(plan.failed))
	status := ledger.Succeeded
	if err != nil {
		if s := out.suspect; s != nil && !s.accepted {
			if rerr := w.recordSuspect(ctx, s); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		err = fmt.Errorf("loading %s: %w", w.id, err)
		status = ledger.Outcome(err)
	} else {
		res.New, res.Changed, res.Deleted = out.inserted, out.changed, out.deleted
		res.Unchanged = out.applied - out.inserted - out.changed
		errCount += out.conflicts
		if errCount > 0 {
			status = ledger.Partial
		}
	}
	counts := ledger.Counts{In: res.In, New: res.New, Changed: res.Changed, Deleted: res.Deleted,
		Unchanged: res.Unchanged, Errors: errCount}
	if ferr := w.step.Finish(ctx, status, counts, w.detail(&plan, &out), err); ferr != nil && err == nil {
		// The data is committed; the ledger write failing is reported, not hidden.
		err = ferr
	}
	w.l.finished(Report{ID: w.id, Status: status, Result: res, Errors: errCount, Started: w.started,
		Elapsed: time.Since(w.started), Err: err})
	if err != nil && (status == ledger.Failed || status == ledger.Refused) {
		return extract.Result{In: w.n, FailedScopes: res.FailedScopes}, err
	}
	return res, err
}

// scopePlan is the scopes' fate, decided when the commit starts.
type scopePlan struct {
	complete []string // declared complete and not failed: applied, missing keys deleted
	failed   []failedScope
	apply    map[string]bool
}

type failedScope struct {
	Scope   string `json:"scope"`
	Error   string `json:"error"`
	Records int64  `json:"records"`
}

func (p *scopePlan) failedNames() []string {
	if len(p.failed) == 0 {
		return nil
	}
	out := make([]string, len(p.failed))
	for i, f := range p.failed {
		out[i] = f.Scope
	}
	return out
}

func (w *writer) plan() scopePlan {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := scopePlan{apply: map[string]bool{}}
	for name, st := range w.scopes {
		switch {
		case st.failed:
			msg := st.err
			if msg == "" {
				msg = "the source reported it failed"
			}
			p.failed = append(p.failed, failedScope{Scope: name, Error: msg, Records: st.records})
		case st.complete:
			p.complete = append(p.complete, name)
			p.apply[name] = true
		default:
			p.failed = append(p.failed, failedScope{Scope: name, Records: st.records,
				Error: "the source declared this scope neither complete nor failed, so it is treated as failed"})
		}
	}
	sort.Strings(p.complete)
	sort.Slice(p.failed, func(i, j int) bool { return p.failed[i].Scope < p.failed[j].Scope })
	return p
}

func (w *writer) detail(p *scopePlan, out *mergeOutcome) map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := map[string]any{}
	if w.badRowCount > 0 {
		d["bad_rows"] = w.badRows
		d["bad_rows_total"] = w.badRowCount
		d["bad_rows_kept"] = "their keys keep their last good version and are never deleted"
	}
	if p != nil {
		d["complete_scopes"] = len(p.complete)
		if len(p.failed) > 0 {
			d["failed_scopes"] = p.failed[:min(len(p.failed), maxDetailRows)]
			d["failed_scopes_total"] = len(p.failed)
			var skipped int64
			for _, f := range p.failed {
				skipped += f.Records
			}
			d["records_not_applied"] = skipped
		}
	}
	if out != nil {
		d["path"] = out.path
		if out.duplicates > 0 {
			d["duplicate_keys"] = out.duplicates
			if len(out.conflictKeys) > 0 {
				d["conflicting_duplicates"] = out.conflictKeys
				d["conflicting_duplicates_total"] = out.conflicts
			}
		}
		if out.rescoped > 0 {
			d["rescoped"] = out.rescoped
		}
		if out.keptBad > 0 {
			d["kept_bad_keys"] = out.keptBad
		}
		if s := out.suspect; s != nil {
			d["suspect"] = map[string]any{"live": s.err.Live, "deleted": s.err.Deleted, "written": s.err.Written,
				"limit_percent": s.err.Limit, "accepted": s.accepted, "why": s.err.what()}
		}
		laps := map[string]int64{}
		for _, l := range out.laps {
			laps[l.name] = l.d.Milliseconds()
		}
		d["timings_ms"] = laps
	}
	return d
}
