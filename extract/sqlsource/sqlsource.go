// Package sqlsource extracts relational sources (SITS, CMIS) through
// database/sql, so that the same SELECTs and the same code run on Oracle
// (godror) in production and on a PostgreSQL copy (pgx) in tests and the demo.
// Every value is typed explicitly, so the raw payload is the same JSON
// whichever driver read it; an unreadable row is reported and skipped, and an
// entity with too many of them fails.
package sqlsource

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/secret"
)

// Entity is one SELECT whose rows become one raw entity, read as a full
// snapshot (scope "").
type Entity struct {
	// Name is the raw entity name ("student", "module_group").
	Name string
	// SQL is the SELECT. {{schema}} is replaced by the owner prefix
	// ("SISMGR." or nothing) and :name by a bind parameter from
	// Config.Params. Write it so it runs unchanged on Oracle and PostgreSQL:
	// unquoted identifiers, no "::" casts, no ':' other than parameters
	// (comments are stripped first), no "--" inside string literals.
	SQL string
	// Key lists the columns whose values, joined with "|", are the record key
	// (NULL as ""). A row whose key columns are all empty is a bad row.
	Key []string
	// KeyFunc, when set, computes the key instead; get returns a column's
	// canonical value and whether it is NULL.
	KeyFunc func(get func(column string) (string, bool)) (string, error)
	// Types declares the columns that are not text (lower-case names).
	Types map[string]Type
	// Reads names the views or tables the SELECT reads, as the source
	// contract (Config.Contract) names them; Check describes each.
	Reads []string
}

// Config says where and how a source is read.
type Config struct {
	Source   string // raw source name: sits, cmis
	Instance string // raw instance name; defaults to Source
	Driver   string // pgx or godror
	DSN      secret.DSN
	// Schema is the owner of the views (SISMGR); empty means the
	// connection's default schema.
	Schema string
	// Params are the values of the SELECTs' :name parameters.
	Params map[string]any
	// MaxBadRowsPercent fails an entity whose unreadable rows exceed this
	// share of its rows.
	MaxBadRowsPercent float64
	FetchSize         int
	// Timeout bounds each entity's query (0 = none).
	Timeout time.Duration
	// Contract describes the relations the entities read (docs/sources.md);
	// Check compares the source with it.
	Contract Contract
}

// Query returns the SELECT sql/<name>.sql embedded in fsys by source's
// package; a missing one is a build mistake.
func Query(fsys fs.FS, source, name string) string {
	b, err := fs.ReadFile(fsys, "sql/"+name+".sql")
	if err != nil {
		panic(source + ": missing embedded query " + name)
	}
	return string(b)
}

// Source is a configured relational source; it implements extract.Source.
// It dials nothing until Extract or Check is called.
type Source struct {
	cfg      Config
	entities []Entity
	progress extract.Progress
}

var _ extract.Source = (*Source)(nil)

// New builds a source over the given entities, restricted to opts.Entities
// when that is not empty (an unknown name is an error listing the known ones).
func New(cfg Config, entities []Entity, opts extract.Options) (*Source, error) {
	if cfg.Instance == "" {
		cfg.Instance = cfg.Source
	}
	if cfg.Schema != "" && !schemaName.MatchString(cfg.Schema) {
		return nil, fmt.Errorf("%s: schema %q is not a plain identifier", cfg.Source, cfg.Schema)
	}
	selected := entities
	if len(opts.Entities) > 0 {
		var names []string
		for _, e := range entities {
			names = append(names, e.Name)
		}
		selected = nil
		for _, want := range opts.Entities {
			i := slices.IndexFunc(entities, func(e Entity) bool { return e.Name == want })
			if i < 0 {
				return nil, fmt.Errorf("%s has no entity %q (known: %s)", cfg.Source, want, strings.Join(names, ", "))
			}
			if !slices.ContainsFunc(selected, func(e Entity) bool { return e.Name == want }) {
				selected = append(selected, entities[i])
			}
		}
		// Keep the source's own order whatever order the operator typed.
		slices.SortStableFunc(selected, func(a, b Entity) int {
			return slices.IndexFunc(entities, func(e Entity) bool { return e.Name == a.Name }) -
				slices.IndexFunc(entities, func(e Entity) bool { return e.Name == b.Name })
		})
	}
	return &Source{cfg: cfg, entities: selected, progress: opts.Progress}, nil
}

// Name is the source's name, as the operator selects it.
func (s *Source) Name() string { return s.cfg.Source }

// Entities lists the entity names this source will extract.
func (s *Source) Entities() []string {
	var names []string
	for _, e := range s.entities {
		names = append(names, e.Name)
	}
	return names
}

// Extract reads every selected entity in order and streams it to sink, one
// entity writer each. An entity whose query fails, or whose bad rows exceed
// the configured share, is aborted (raw keeps its last good state) while the
// others go ahead; the returned error lists every failed entity.
func (s *Source) Extract(ctx context.Context, sink extract.Sink) error {
	db, err := Open(ctx, s.cfg.Driver, s.cfg.DSN)
	if err != nil {
		err = fmt.Errorf("extracting %s: %w", s.cfg.Source, err)
		// Record each entity as failed, so the ledger shows what did not run.
		for _, e := range s.entities {
			if w, werr := sink.Entity(ctx, s.id(e)); werr == nil {
				w.ScopeFailed("", err)
				w.Abort()
			}
		}
		return err
	}
	defer db.Close()
	var errs []error
	for _, e := range s.entities {
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("extracting %s/%s: %w", s.cfg.Source, e.Name, ctx.Err()))
			continue
		}
		if err := s.extractEntity(ctx, db, sink, e); err != nil {
			errs = append(errs, fmt.Errorf("extracting %s/%s: %w", s.cfg.Source, e.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Source) id(e Entity) extract.EntityID {
	return extract.EntityID{Source: s.cfg.Source, Instance: s.cfg.Instance, Entity: e.Name}
}

func (s *Source) extractEntity(ctx context.Context, db *DB, sink extract.Sink, e Entity) (err error) {
	w, err := sink.Entity(ctx, s.id(e))
	if err != nil {
		return fmt.Errorf("opening the raw writer: %w", err)
	}
	defer w.Abort() // does nothing after a successful Commit
	defer func() {
		if err != nil {
			w.ScopeFailed("", err)
		}
	}()
	qctx := ctx
	if s.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		qctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
	}
	query, args, err := db.prepare(e.SQL, s.cfg.Schema, s.cfg.Params)
	if err != nil {
		return err
	}
	if s.progress != nil {
		var n int64
		// The count needs no order: drop the final ORDER BY so the source
		// does not sort the view twice.
		counting := trailingOrderBy.ReplaceAllString(query, "")
		if err := db.QueryRowContext(qctx, "SELECT COUNT(*) FROM ("+counting+") q", args...).Scan(&n); err != nil {
			return fmt.Errorf("counting rows: %w", scrub(err, db.password))
		}
		s.progress.Expect(e.Name, n)
	}
	rows, err := db.QueryContext(qctx, query, append(args, db.drv.queryOptions(s.cfg.FetchSize)...)...)
	if err != nil {
		return fmt.Errorf("querying: %w", scrub(err, db.password))
	}
	defer rows.Close()
	r, err := newReader(e, rows)
	if err != nil {
		return err
	}
	var (
		total, bad, pending int64
		seen                = map[string]struct{}{}
	)
	for rows.Next() {
		total++
		rec, key, rerr := r.read(rows)
		if rerr == nil {
			if _, dup := seen[key]; dup {
				rerr = fmt.Errorf("duplicate key %q: an earlier row has it (the first is kept)", key)
			}
		}
		if rerr != nil {
			bad++
			w.RowError(key, rerr)
			continue
		}
		seen[key] = struct{}{}
		if err := w.Write(ctx, rec); err != nil {
			return fmt.Errorf("writing row %q: %w", key, err)
		}
		if pending++; pending == 1000 && s.progress != nil {
			s.progress.Done(e.Name, pending)
			pending = 0
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading rows (after %d): %w", total, scrub(err, db.password))
	}
	if s.progress != nil && pending > 0 {
		s.progress.Done(e.Name, pending)
	}
	if bad > 0 && float64(bad)*100 > s.cfg.MaxBadRowsPercent*float64(total) {
		return &BadRowsError{Entity: e.Name, Bad: bad, Rows: total, MaxPercent: s.cfg.MaxBadRowsPercent}
	}
	w.ScopeComplete("")
	if _, err := w.Commit(ctx); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

// trailingOrderBy is a final ORDER BY clause (one that no parenthesis closes).
var trailingOrderBy = regexp.MustCompile(`(?is)\s+ORDER\s+BY\s+[^()]*$`)

// reader turns the rows of one query into records.
type reader struct {
	e      Entity
	cols   []column
	keyIdx []int
	byName map[string]int
	raw    []any
	ptrs   []any
	vals   []string
	nulls  []bool
	errs   []error
	size   int
}

func newReader(e Entity, rows *sql.Rows) (*reader, error) {
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, fmt.Errorf("reading the column types: %w", err)
	}
	r := &reader{e: e, byName: map[string]int{}}
	var problems []string
	for i, ct := range cts {
		name := strings.ToLower(ct.Name())
		if _, dup := r.byName[name]; dup {
			problems = append(problems, fmt.Sprintf("column %s appears twice", name))
		}
		r.byName[name] = i
		t := e.Types[name]
		k := classify(ct.DatabaseTypeName())
		if !compatible(t, k) {
			problems = append(problems, fmt.Sprintf("column %s is %s in the source but the contract reads it as %s", name, ct.DatabaseTypeName(), t))
		}
		r.cols = append(r.cols, column{name: name, typ: t, char: isChar(ct.DatabaseTypeName()), dbType: ct.DatabaseTypeName(),
			prefix: extract.AppendJSONString(nil, name)})
	}
	for name := range e.Types {
		if _, ok := r.byName[name]; !ok {
			problems = append(problems, fmt.Sprintf("typed column %s is not in the SELECT", name))
		}
	}
	for _, k := range e.Key {
		i, ok := r.byName[k]
		if !ok {
			problems = append(problems, fmt.Sprintf("key column %s is not in the SELECT", k))
		}
		r.keyIdx = append(r.keyIdx, i)
	}
	if len(e.Key) == 0 && e.KeyFunc == nil {
		problems = append(problems, "no key columns declared")
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("the SELECT does not match the contract: %s", strings.Join(problems, "; "))
	}
	n := len(cts)
	r.raw, r.ptrs = make([]any, n), make([]any, n)
	for i := range r.raw {
		r.ptrs[i] = &r.raw[i]
	}
	r.vals, r.nulls, r.errs = make([]string, n), make([]bool, n), make([]error, n)
	r.size = 64
	return r, nil
}

// read converts the current row. On failure it still returns the key as far
// as it could be read, so the bad row can be named.
func (r *reader) read(rows *sql.Rows) (extract.Record, string, error) {
	if err := rows.Scan(r.ptrs...); err != nil {
		return extract.Record{}, "", fmt.Errorf("scanning the row: %w", err)
	}
	var firstErr error
	for i := range r.cols {
		r.vals[i], r.nulls[i], r.errs[i] = r.cols[i].value(r.raw[i])
		if r.errs[i] != nil && firstErr == nil {
			firstErr = r.errs[i]
		}
	}
	key, kerr := r.key()
	if firstErr != nil {
		return extract.Record{}, key, firstErr
	}
	if kerr != nil {
		return extract.Record{}, key, kerr
	}
	b := make([]byte, 0, r.size)
	b = append(b, '{')
	for i := range r.cols {
		if i > 0 {
			b = append(b, ',')
		}
		c := &r.cols[i]
		b = append(b, c.prefix...)
		b = append(b, ':')
		switch {
		case r.nulls[i]:
			b = append(b, "null"...)
		case c.typ == Number:
			b = append(b, r.vals[i]...)
		default:
			b = extract.AppendJSONString(b, r.vals[i])
		}
	}
	b = append(b, '}')
	if len(b) > r.size {
		r.size = len(b) + 16
	}
	return extract.Record{Key: key, Scope: "", Payload: json.RawMessage(b)}, key, nil
}

// get returns a column's canonical value for key functions; a column that
// failed to convert gives its raw text, made printable.
func (r *reader) get(name string) (string, bool) {
	i, ok := r.byName[name]
	if !ok {
		return "", true
	}
	if r.errs[i] != nil {
		raw := asString(r.raw[i])
		if raw == "" {
			raw = fmt.Sprint(r.raw[i])
		}
		return strings.ToValidUTF8(raw, "\uFFFD"), false
	}
	return r.vals[i], r.nulls[i]
}

func (r *reader) key() (string, error) {
	if r.e.KeyFunc != nil {
		return r.e.KeyFunc(r.get)
	}
	parts := make([]string, len(r.keyIdx))
	empty := true
	for j, i := range r.keyIdx {
		v, null := r.get(r.cols[i].name)
		if !null && v != "" {
			empty = false
		}
		parts[j] = v
	}
	key := strings.Join(parts, "|")
	if empty {
		return key, fmt.Errorf("key column(s) %s are empty", strings.Join(r.e.Key, ", "))
	}
	return key, nil
}

// CheckReport is what Check found: each relation the selected entities
// read, described and compared with the contract, and each entity's SELECT
// run without fetching a row.
type CheckReport struct {
	Relations []RelationCheck
	// Entities holds each entity's problem, nil when its SELECT runs and
	// its columns are what the entity reads.
	Entities map[string]error
	// Uncontracted are relations an entity reads that the contract does
	// not describe (a build mistake the tests catch).
	Uncontracted []string
}

// OK reports a source that matches its contract and whose SELECTs run.
func (r *CheckReport) OK() bool {
	for _, rc := range r.Relations {
		if !rc.OK() {
			return false
		}
	}
	for _, err := range r.Entities {
		if err != nil {
			return false
		}
	}
	return len(r.Uncontracted) == 0
}

// Check dials the source and, before anything is read, describes every
// relation the selected entities read (a WHERE 1 = 0 select: columns and
// types from the driver) against the contract, naming each missing or
// retyped column; then it runs every entity's SELECT without fetching a
// row, so a missing grant or a type the reader cannot take shows in `mim
// check` rather than at night. err is set when the database cannot be
// reached.
func (s *Source) Check(ctx context.Context) (*CheckReport, error) {
	db, err := Open(ctx, s.cfg.Driver, s.cfg.DSN)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rels, unknown := s.relations()
	rep := &CheckReport{Entities: map[string]error{}, Uncontracted: unknown}
	for _, rel := range rels {
		rep.Relations = append(rep.Relations, s.describe(ctx, db, rel))
	}
	for _, e := range s.entities {
		rep.Entities[e.Name] = s.checkEntity(ctx, db, e)
	}
	return rep, nil
}
func (s *Source) checkEntity(ctx context.Context, db *DB, e Entity) error {
	query, args, err := db.prepare(e.SQL, s.cfg.Schema, s.cfg.Params)
	if err != nil {
		return err
	}
	rows, err := db.QueryContext(ctx, "SELECT * FROM ("+query+") q WHERE 1 = 0", args...)
	if err != nil {
		return scrub(err, db.password)
	}
	defer rows.Close()
	if _, err := newReader(e, rows); err != nil {
		return err
	}
	return rows.Err()
}
