package transform

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/ledger"
)

// Stage is the ledger stage of transform steps.
const Stage = "transform"

// DefaultSampleRows is how many failing rows a report shows per check.
const DefaultSampleRows = 5

// ownerMark starts the comment of every relation the runner built; only
// such relations are ever dropped or have their indexes replaced.
const ownerMark = "mim model"

// Options control one transform.
type Options struct {
	// Select limits the models built (see Project.Select); empty builds all.
	Select []string
	// StatementTimeout and LockTimeout bound every statement of the
	// transaction (warehouse.statement_timeout, warehouse.lock_timeout).
	StatementTimeout, LockTimeout time.Duration
	// SampleRows is how many failing rows to keep per check (default 5).
	SampleRows int
	// Rollback builds and checks everything, then rolls back even if all
	// passed: a rehearsal that changes nothing.
	Rollback bool
	// Run, if set, records one ledger step per model, hook and the checks.
	Run *ledger.Run
	// Logger receives a debug line per model; nil discards.
	Logger *slog.Logger
	// Hooks run inside the transaction after a layer's models.
	Hooks []Hook
	// OnModel, if set, is told as each model is built (for progress output).
	OnModel func(ModelResult)

	// afterCommit is a test hook called right after COMMIT succeeds.
	afterCommit func()
}

// Hook is Go work that must happen inside the transform's transaction
// between layers, such as deriving course mappings from the Moodle courses
// staging just built. It runs after every selected model of its layer (and
// runs even when none of them is selected).
type Hook struct {
	Name  string
	After string // layer: staging, intermediate or marts
	// Run does the work; its summary is shown and kept in the ledger.
	Run func(ctx context.Context, tx pgx.Tx) (summary string, err error)
}

// ModelResult is what building one model did.
type ModelResult struct {
	Model        string
	Materialized string
	// Action: created, refilled (same columns: truncated and filled),
	// rebuilt (columns changed: dropped and created), replaced (a view).
	Action   string
	Rows     int64 // -1 for views
	Duration time.Duration
}

// HookResult is what one hook did.
type HookResult struct {
	Name     string
	Summary  string
	Duration time.Duration
}

// Result is what a transform did, committed or not.
type Result struct {
	Models []ModelResult
	Hooks  []HookResult
	// Checked counts checks and tests run; Failures those that failed.
	Checked  int
	Failures []Failure
	// Skipped lists checks and tests not run because a model they need has
	// never been built (possible only with --select).
	Skipped []string
	// Stale lists models downstream of a selected model that were not
	// selected: they keep the rows of their last build.
	Stale     []string
	Committed bool
	Duration  time.Duration
}

// Run builds the selected models in one transaction on pool, runs every
// check and test, and commits only if all pass. On any failure the
// transaction is rolled back, so every model keeps what it had. The error
// is a *ModelError (a model could not be built), a *CheckError (checks or
// tests returned rows), a *NotBuiltError or a *SelectError; the Result is
// returned in every case it could be formed. Result.Committed is the
// truth about the marts: a transform that committed is recorded as
// committed (the ledger writes again from a fresh connection if its own
// died right after COMMIT), and an error with Committed set is about the
// bookkeeping only.
func Run(ctx context.Context, pool *pgxpool.Pool, p *Project, opts Options) (*Result, error) {
	start := time.Now()
	rec := &recorder{run: opts.Run}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("beginning the transform transaction: %w", err)
	}
	res, err := execute(ctx, tx, p, opts, rec)
	if err == nil && !opts.Rollback {
		if err = tx.Commit(ctx); err != nil {
			err = fmt.Errorf("committing the transform: %w", err)
		} else {
			res.Committed = true
			if opts.afterCommit != nil {
				opts.afterCommit()
			}
		}
	}
	if res == nil {
		res = &Result{}
	}
	if !res.Committed {
		rbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		_ = tx.Rollback(rbCtx)
		cancel()
	}
	res.Duration = time.Since(start)
	if ferr := rec.finish(ctx, res, err); ferr != nil && err == nil {
		err = ferr
	}
	return res, err
}

// Execute builds the selected models and runs every check and test inside
// the caller's transaction, and neither commits nor rolls back: the caller
// decides (the rollover's dry run builds the marts as they would be after
// its changes, looks, and rolls everything back). It sets the transaction's
// statement and lock timeouts. Options.Run and Options.Rollback are ignored.
func Execute(ctx context.Context, tx pgx.Tx, p *Project, opts Options) (*Result, error) {
	return execute(ctx, tx, p, opts, &recorder{})
}

func execute(ctx context.Context, tx pgx.Tx, p *Project, opts Options, rec *recorder) (*Result, error) {
	res := &Result{}
	selected, err := p.Select(opts.Select)
	if err != nil {
		return res, err
	}
	if opts.SampleRows <= 0 {
		opts.SampleRows = DefaultSampleRows
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	for _, s := range []struct {
		name string
		d    time.Duration
	}{{"statement_timeout", opts.StatementTimeout}, {"lock_timeout", opts.LockTimeout}} {
		if _, err := tx.Exec(ctx, `SELECT set_config($1, $2, true)`, s.name, fmt.Sprintf("%dms", s.d.Milliseconds())); err != nil {
			return res, fmt.Errorf("setting %s for the transform: %w", s.name, err)
		}
	}
	// The models are large set-based statements run once a night: JIT
	// compilation was measured costing more than it saves (0.9 s of a 0.9 s
	// model), and sorts and hashes should stay in memory. Both are local to
	// this transaction.
	for _, s := range [][2]string{{"jit", "off"}, {"work_mem", TransformWorkMem}} {
		if _, err := tx.Exec(ctx, `SELECT set_config($1, $2, true)`, s[0], s[1]); err != nil {
			return res, fmt.Errorf("setting %s for the transform: %w", s[0], err)
		}
	}
	existing, err := existingRelations(ctx, tx)
	if err != nil {
		return res, err
	}
	isSelected := map[string]bool{}
	for _, m := range selected {
		isSelected[m.Name] = true
	}
	for _, m := range selected {
		for _, d := range m.Depends {
			if !isSelected[d] && !existing[d] {
				return res, &NotBuiltError{Model: m.Name, Dependency: d}
			}
		}
	}
	stale := map[string]bool{}
	for _, m := range selected {
		for _, d := range p.Descendants(m.Name) {
			if !isSelected[d.Name] {
				stale[d.Name] = true
			}
		}
	}
	for _, m := range p.inOrder(stale) {
		res.Stale = append(res.Stale, m.Name)
	}

	hooksDone := map[int]bool{}
	runHooks := func(beforeRank int) error {
		for i, h := range opts.Hooks {
			if hooksDone[i] || layerRank(h.After) >= beforeRank {
				continue
			}
			hooksDone[i] = true
			st, err := rec.step(ctx, "hook:"+h.Name)
			if err != nil {
				return err
			}
			t0 := time.Now()
			summary, err := h.Run(ctx, tx)
			hr := HookResult{Name: h.Name, Summary: summary, Duration: time.Since(t0)}
			rec.hookDone(st, hr, err)
			if err != nil {
				return fmt.Errorf("hook %s: %w", h.Name, err)
			}
			res.Hooks = append(res.Hooks, hr)
		}
		return nil
	}
	for _, m := range selected {
		if err := runHooks(m.rank); err != nil {
			return res, err
		}
		st, err := rec.step(ctx, m.Name)
		if err != nil {
			return res, err
		}
		t0 := time.Now()
		mr, err := build(ctx, tx, m, opts)
		mr.Duration = time.Since(t0)
		rec.modelDone(st, mr, err)
		if err != nil {
			return res, err
		}
		existing[m.Name] = true
		res.Models = append(res.Models, mr)
		logger.Debug("built model", "stage", Stage, "entity", m.Name, "rows", mr.Rows, "action", mr.Action,
			"seconds", mr.Duration.Seconds())
		if opts.OnModel != nil {
			opts.OnModel(mr)
		}
	}
	if err := runHooks(len(layers)); err != nil {
		return res, err
	}

	st, err := rec.step(ctx, "checks")
	if err != nil {
		return res, err
	}
	res.Failures, res.Checked, res.Skipped, err = runChecks(ctx, tx, p, existing, opts.SampleRows)
	rec.checksDone(st, res, err)
	if err != nil {
		return res, err
	}
	if len(res.Failures) > 0 {
		return res, &CheckError{Failures: res.Failures, Checked: res.Checked}
	}
	return res, nil
}

func layerRank(layer string) int {
	for i, l := range layers {
		if l.Dir == layer {
			return i
		}
	}
	return len(layers)
}

// existingRelations lists the relations of the model schemas that exist.
func existingRelations(ctx context.Context, tx pgx.Tx) (map[string]bool, error) {
	schemas := make([]string, len(layers))
	for i, l := range layers {
		schemas[i] = l.Schema
	}
	rows, err := tx.Query(ctx, `SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'v', 'm', 'p', 'f')`, schemas)
	if err != nil {
		return nil, fmt.Errorf("listing existing models: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing existing models: %w", err)
	}
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

// column is one column of a model's result or of an existing table.
type column struct {
	name   string
	typ    uint32
	typmod int32
}

// relation is what exists under a model's name.
type relation struct {
	exists bool
	kind   byte // 'r' table, 'v' view, ...
	owned  bool // built by the runner (its comment starts with ownerMark)
	cols   []column
}

func lookupRelation(ctx context.Context, tx pgx.Tx, name string) (relation, error) {
	var r relation
	var kind string
	var comment *string
	schema, rel, _ := strings.Cut(name, ".")
	err := tx.QueryRow(ctx, `SELECT c.relkind::text, obj_description(c.oid, 'pg_class') FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`, schema, rel).Scan(&kind, &comment)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, nil
	}
	if err != nil {
		return r, err
	}
	r.exists, r.kind = true, kind[0]
	r.owned = comment != nil && strings.HasPrefix(*comment, ownerMark)
	rows, err := tx.Query(ctx, `SELECT a.attname::text, a.atttypid::int8, a.atttypmod FROM pg_attribute a
		WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, quoteRelation(name))
	if err != nil {
		return r, err
	}
	r.cols, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (column, error) {
		var c column
		var typ int64
		err := row.Scan(&c.name, &typ, &c.typmod)
		c.typ = uint32(typ)
		return c, err
	})
	return r, err
}

// stmt is SQL sent for a model: prefix + the model's SQL + suffix, so a
// position PostgreSQL reports can be traced back to a line of the file.
type stmt struct {
	prefix, suffix string
}

func (s stmt) text(m *Model) string { return s.prefix + m.SQL + s.suffix }

// line maps a 1-based character position in s.text(m) to a line of m's file.
func (s stmt) line(m *Model, err error) int {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Position <= 0 {
		return 0
	}
	pos := int(pe.Position) - 1 - utf8.RuneCountInString(s.prefix)
	if pos < 0 {
		return 0
	}
	off, n := len(m.SQL), 0
	for i := range m.SQL {
		if n == pos {
			off = i
			break
		}
		n++
	}
	return m.bodyLine + lineAt(m.SQL, off) - 1
}

// build materializes one model and returns what it did: the model's
// columns are described and checked, the relation it replaces looked up,
// then the model is built as a view (buildView) or a table (buildTable).
func build(ctx context.Context, tx pgx.Tx, m *Model, opts Options) (ModelResult, error) {
	b := &builder{ctx: ctx, tx: tx, m: m, opts: opts, q: quoteRelation(m.Name),
		mr: ModelResult{Model: m.Name, Materialized: m.Materialized, Rows: -1}}
	cols, err := b.describe()
	if err != nil {
		return b.mr, err
	}
	rel, err := lookupRelation(ctx, tx, m.Name)
	if err != nil {
		return b.mr, b.fail("looking up the existing relation", stmt{}, err)
	}
	if rel.exists && !rel.owned && (rel.kind != 'r' || m.Materialized != Table) {
		return b.mr, b.fail("checking the existing relation", stmt{}, fmt.Errorf("%s exists as a %s that mim transform did not build; it will not replace it (drop it, or rename the model)",
			m.Name, kindName(rel.kind)))
	}
	if m.Materialized == View {
		return b.mr, b.buildView(rel)
	}
	return b.mr, b.buildTable(rel, cols)
}

// builder builds one model inside the transform's transaction; mr is what
// it did so far.
type builder struct {
	ctx  context.Context
	tx   pgx.Tx
	m    *Model
	opts Options
	q    string // the model's relation, quoted
	mr   ModelResult
}

// fail is the ModelError of step, whose statement s failed with err.
func (b *builder) fail(step string, s stmt, err error) error {
	return &ModelError{Model: b.m.Name, Path: b.m.Path, Line: s.line(b.m, err), Step: step, Err: err,
		Timeout: timeoutNote(err, b.opts.StatementTimeout, b.opts.LockTimeout)}
}

// exec runs sql, the statement s of step.
func (b *builder) exec(step string, s stmt, sql string) (pgconn.CommandTag, error) {
	tag, err := b.tx.Exec(b.ctx, sql, pgx.QueryExecModeExec)
	if err != nil {
		return tag, b.fail(step, s, err)
	}
	return tag, nil
}

// comment marks the relation as built by mim transform from the model.
func (b *builder) comment() string {
	return fmt.Sprintf("COMMENT ON %s %s IS %s", strings.ToUpper(b.m.Materialized), b.q,
		quoteLiteral(strings.TrimSpace(fmt.Sprintf("%s built by mim transform from sql/%s; rebuilt every run. %s", ownerMark, b.m.Path, b.m.Description))))
}

// describe prepares the model's SELECT without running it and returns its
// columns, refusing a column without a name or named twice, and a check or
// index naming a column the model does not have.
func (b *builder) describe() ([]column, error) {
	m := b.m
	describe := stmt{prefix: "SELECT * FROM (\n", suffix: "\n) AS model"}
	sd, err := b.tx.Conn().PgConn().Prepare(b.ctx, "", describe.text(m), nil)
	if err != nil {
		return nil, b.fail("parsing the SELECT", describe, err)
	}
	cols := make([]column, len(sd.Fields))
	seen := map[string]bool{}
	for i, f := range sd.Fields {
		cols[i] = column{name: f.Name, typ: f.DataTypeOID, typmod: f.TypeModifier}
		if f.Name == "?column?" {
			return nil, b.fail("checking columns", stmt{}, fmt.Errorf("column %d has no name: give it an alias (AS name)", i+1))
		}
		if seen[f.Name] {
			return nil, b.fail("checking columns", stmt{}, fmt.Errorf("column %q appears twice", f.Name))
		}
		seen[f.Name] = true
	}
	for _, c := range m.Checks {
		for _, col := range c.Columns {
			if !seen[col] {
				return nil, b.fail("checking columns", stmt{}, fmt.Errorf("check %s (line %d) names column %q, which the model does not have (it has %s)",
					c.Text, c.Line, col, columnNames(cols)))
			}
		}
	}
	for _, idx := range m.Indexes {
		for _, col := range idx {
			if !seen[col] {
				return nil, b.fail("checking columns", stmt{}, fmt.Errorf("index (%s) names column %q, which the model does not have", strings.Join(idx, ", "), col))
			}
		}
	}
	return cols, nil
}

// buildView creates or replaces the model's view (a table in its place is
// dropped first); a view whose columns changed in a way CREATE OR REPLACE
// refuses is dropped and created again.
func (b *builder) buildView(rel relation) error {
	if rel.exists && rel.kind != 'v' {
		if _, err := b.exec("dropping the table the view replaces", stmt{}, "DROP "+dropKind(rel.kind)+" "+b.q); err != nil {
			return err
		}
		rel.exists = false
	}
	create := stmt{prefix: "CREATE OR REPLACE VIEW " + b.q + " AS\n"}
	b.mr.Action = "replaced"
	if !rel.exists {
		b.mr.Action = "created"
	}
	sp, err := b.tx.Begin(b.ctx)
	if err != nil {
		return b.fail("creating the view", stmt{}, err)
	}
	if _, err := sp.Exec(b.ctx, create.text(b.m), pgx.QueryExecModeExec); err != nil {
		_ = sp.Rollback(b.ctx)
		var pe *pgconn.PgError
		if !rel.exists || !errors.As(err, &pe) || (pe.Code != "42P16" && pe.Code != "42804") {
			return b.fail("creating the view", create, err)
		}
		// The columns changed in a way CREATE OR REPLACE refuses.
		if _, err := b.exec("dropping the view (its columns changed)", stmt{}, "DROP VIEW "+b.q); err != nil {
			return err
		}
		recreate := stmt{prefix: "CREATE VIEW " + b.q + " AS\n"}
		if _, err := b.exec("creating the view", recreate, recreate.text(b.m)); err != nil {
			return err
		}
		b.mr.Action = "rebuilt"
	} else if err := sp.Commit(b.ctx); err != nil {
		return b.fail("creating the view", stmt{}, err)
	}
	_, err = b.exec("commenting the view", stmt{}, b.comment())
	return err
}

// buildTable fills the model's table (refilled when its columns are the
// model's, else created), then indexes and analyzes it.
func (b *builder) buildTable(rel relation, cols []column) error {
	var tag pgconn.CommandTag
	var err error
	switch {
	case rel.exists && rel.kind == 'r' && sameColumns(cols, rel.cols, rel.owned):
		tag, err = b.refillTable(rel, cols)
	case rel.exists && !rel.owned:
		err = b.fail("checking the existing table", stmt{}, fmt.Errorf("table %s was not built by mim transform (a migration owns it) and its columns (%s) differ from the model's (%s)",
			b.m.Name, columnNames(rel.cols), columnNames(cols)))
	default:
		tag, err = b.createTable(rel)
	}
	if err != nil {
		return err
	}
	b.mr.Rows = tag.RowsAffected()
	if err := b.createIndexes(); err != nil {
		return err
	}
	// Inside one transaction autovacuum cannot see the new rows: without
	// statistics the next models would be planned as if this were empty.
	_, err = b.exec("analyzing the table", stmt{}, "ANALYZE "+b.q)
	return err
}

// refillTable empties the table and inserts the model's rows (the model's
// own indexes are dropped first and made again after).
func (b *builder) refillTable(rel relation, cols []column) (pgconn.CommandTag, error) {
	if rel.owned {
		if err := dropOwnIndexes(b.ctx, b.tx, b.m); err != nil {
			return pgconn.CommandTag{}, b.fail("dropping the model's indexes before refilling", stmt{}, err)
		}
	}
	if _, err := b.exec("emptying the table", stmt{}, "TRUNCATE "+b.q); err != nil {
		return pgconn.CommandTag{}, err
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = pgx.Identifier{c.name}.Sanitize()
	}
	ins := stmt{prefix: "INSERT INTO " + b.q + " (" + strings.Join(names, ", ") + ")\nSELECT * FROM (\n", suffix: "\n) AS model"}
	tag, err := b.exec("filling the table", ins, ins.text(b.m))
	if err != nil {
		return tag, err
	}
	b.mr.Action = "refilled"
	return tag, nil
}

// createTable creates the table from the model (dropping one whose columns
// changed) and comments it.
func (b *builder) createTable(rel relation) (pgconn.CommandTag, error) {
	b.mr.Action = "created"
	if rel.exists {
		if _, err := b.exec("dropping the table (its columns changed)", stmt{}, "DROP "+dropKind(rel.kind)+" "+b.q); err != nil {
			return pgconn.CommandTag{}, err
		}
		b.mr.Action = "rebuilt"
	}
	create := stmt{prefix: "CREATE TABLE " + b.q + " AS\n"}
	tag, err := b.exec("creating the table", create, create.text(b.m))
	if err != nil {
		return tag, err
	}
	if _, err := b.exec("commenting the table", stmt{}, b.comment()); err != nil {
		return tag, err
	}
	return tag, nil
}

// createIndexes makes the model's declared indexes.
func (b *builder) createIndexes() error {
	for _, idx := range b.m.Indexes {
		name := indexName(b.m.Name, idx)
		cols := make([]string, len(idx))
		for i, c := range idx {
			cols[i] = pgx.Identifier{c}.Sanitize()
		}
		sql := fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (%s)", pgx.Identifier{name}.Sanitize(), b.q, strings.Join(cols, ", "))
		if _, err := b.exec("creating index ("+strings.Join(idx, ", ")+")", stmt{}, sql); err != nil {
			return err
		}
	}
	return nil
}

// sameColumns reports whether a table can be refilled as it is: the same
// column names with the same types, in the same order for tables the runner
// owns (so they always look exactly like the model).
func sameColumns(model, table []column, ordered bool) bool {
	if len(model) != len(table) {
		return false
	}
	if ordered {
		for i := range model {
			if model[i] != table[i] {
				return false
			}
		}
		return true
	}
	byName := map[string]column{}
	for _, c := range table {
		byName[c.name] = c
	}
	for _, c := range model {
		if t, ok := byName[c.name]; !ok || t.typ != c.typ || (c.typmod != -1 && t.typmod != c.typmod) {
			return false
		}
	}
	return true
}

// indexName is the runner's name for an index: <table>__<cols>, shortened
// with a hash past PostgreSQL's 63 bytes.
func indexName(model string, cols []string) string {
	_, rel, _ := strings.Cut(model, ".")
	n := rel + "__" + strings.Join(cols, "_")
	if len(n) > 63 {
		h := sha256.Sum256([]byte(n))
		n = n[:50] + "_" + hex.EncodeToString(h[:])[:12]
	}
	return n
}

// dropOwnIndexes drops the indexes the runner made on a model's table
// (named <table>__...), so refilling is a bulk load and the header's
// indexes are recreated as declared. Indexes others added are kept.
func dropOwnIndexes(ctx context.Context, tx pgx.Tx, m *Model) error {
	schema, rel, _ := strings.Cut(m.Name, ".")
	rows, err := tx.Query(ctx, `SELECT i.relname::text FROM pg_index x
		JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
		WHERE n.nspname = $1 AND t.relname = $2 AND NOT x.indisprimary AND NOT x.indisunique`, schema, rel)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, n := range names {
		if !strings.HasPrefix(n, rel+"__") {
			continue
		}
		if _, err := tx.Exec(ctx, "DROP INDEX "+pgx.Identifier{schema, n}.Sanitize()); err != nil {
			return err
		}
	}
	return nil
}

func columnNames(cols []column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

func kindName(k byte) string {
	switch k {
	case 'r', 'p':
		return "table"
	case 'v':
		return "view"
	case 'm':
		return "materialized view"
	case 'f':
		return "foreign table"
	}
	return "relation"
}

func dropKind(k byte) string {
	switch k {
	case 'v':
		return "VIEW"
	case 'm':
		return "MATERIALIZED VIEW"
	case 'f':
		return "FOREIGN TABLE"
	}
	return "TABLE"
}

// runChecks runs every model's checks and every singular test against the
// transaction's current state, each in its own savepoint so one that
// cannot run does not stop the others.
func runChecks(ctx context.Context, tx pgx.Tx, p *Project, existing map[string]bool, sample int) ([]Failure, int, []string, error) {
	var failures []Failure
	var skipped []string
	checked := 0
	for _, m := range p.models {
		for _, c := range m.Checks {
			if !existing[m.Name] || (c.Kind == CheckRelationships && !existing[c.RefModel]) {
				skipped = append(skipped, m.Name+": "+c.Text)
				continue
			}
			checked++
			f, err := runCheck(ctx, tx, c.sql(m.Name), sample)
			if err != nil {
				return nil, checked, skipped, err
			}
			if f != nil {
				f.Model, f.Check, f.Path, f.Line = m.Name, c.Text, m.Path, c.Line
				failures = append(failures, *f)
			}
		}
	}
	schemas := map[string]bool{}
	for _, l := range layers {
		schemas[l.Schema] = true
	}
	for _, t := range p.tests {
		toks, _ := scanSQL(t.SQL)
		missing := ""
		for _, r := range references(toks, schemas) {
			if !existing[r.name] {
				missing = r.name
				break
			}
		}
		if missing != "" {
			skipped = append(skipped, t.Name+" (needs "+missing+")")
			continue
		}
		checked++
		f, err := runCheck(ctx, tx, t.SQL, sample)
		if err != nil {
			return nil, checked, skipped, err
		}
		if f != nil {
			f.Check, f.Path, f.Line = t.Name, t.Path, t.bodyLine
			failures = append(failures, *f)
		}
	}
	return failures, checked, skipped, nil
}

// TransformWorkMem is the work_mem of the transform's transaction.
const TransformWorkMem = "64MB"

// runCheck runs one failing-rows query; it returns nil when it returns no
// rows. An error inside the query is a failure (the check could not run);
// only an error that leaves the transaction unusable is returned.
func runCheck(ctx context.Context, tx pgx.Tx, query string, sample int) (*Failure, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening a savepoint for a check: %w", err)
	}
	defer func() { _ = sp.Rollback(ctx) }()
	// QueryExecModeExec: never reuse a cached plan, since the relations
	// under "SELECT *" are rebuilt with other columns between runs.
	// The failing rows are materialised before they are counted and cut
	// to a sample: read through LIMIT directly, the planner favours nested
	// loops that never finish at scale.
	rows, err := sp.Query(ctx, fmt.Sprintf("WITH mim__failing AS MATERIALIZED (\n%s\n)\nSELECT *, count(*) OVER () AS mim__failures FROM mim__failing LIMIT %d", query, sample),
		pgx.QueryExecModeExec)
	if err != nil {
		return &Failure{Err: err.Error()}, ctx.Err()
	}
	defer rows.Close()
	f := &Failure{}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return &Failure{Err: err.Error()}, ctx.Err()
		}
		if f.Columns == nil {
			fields := rows.FieldDescriptions()
			for _, fd := range fields[:len(fields)-1] {
				f.Columns = append(f.Columns, fd.Name)
			}
		}
		n, _ := vals[len(vals)-1].(int64)
		f.Failures = n
		row := make([]string, len(vals)-1)
		for i, v := range vals[:len(vals)-1] {
			row[i] = formatValue(v)
		}
		f.Sample = append(f.Sample, row)
	}
	if err := rows.Err(); err != nil {
		return &Failure{Err: err.Error()}, ctx.Err()
	}
	if f.Failures == 0 {
		return nil, nil
	}
	return f, nil
}

func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return x
	case []byte:
		return `\x` + hex.EncodeToString(x)
	case time.Time:
		return x.Format(time.RFC3339)
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

// recorder writes the ledger steps of one transform. Steps start when
// their work starts; they are finished only once the transaction's fate is
// known, so a model that was built and then rolled back is not recorded as
// succeeded. detail.seconds holds the build time itself.
type recorder struct {
	run     *ledger.Run
	pending []pendingStep
}

type pendingStep struct {
	step   *ledger.Step
	counts ledger.Counts
	detail map[string]any
	err    error
}

func (r *recorder) step(ctx context.Context, entity string) (int, error) {
	if r.run == nil {
		return -1, nil
	}
	st, err := r.run.Step(ctx, ledger.StepKey{Stage: Stage, Entity: entity})
	if err != nil {
		return -1, err
	}
	r.pending = append(r.pending, pendingStep{step: st})
	return len(r.pending) - 1, nil
}

func (r *recorder) modelDone(i int, mr ModelResult, err error) {
	if i < 0 {
		return
	}
	p := &r.pending[i]
	p.counts.In = max(mr.Rows, 0)
	p.detail = map[string]any{"seconds": mr.Duration.Seconds(), "action": mr.Action, "materialized": mr.Materialized}
	p.err = err
}

func (r *recorder) hookDone(i int, hr HookResult, err error) {
	if i < 0 {
		return
	}
	p := &r.pending[i]
	p.detail = map[string]any{"seconds": hr.Duration.Seconds(), "summary": hr.Summary}
	p.err = err
}

func (r *recorder) checksDone(i int, res *Result, err error) {
	if i < 0 {
		return
	}
	p := &r.pending[i]
	p.counts.In = int64(res.Checked)
	p.counts.Errors = int64(len(res.Failures))
	fs := res.Failures
	if len(fs) > 20 {
		fs = fs[:20]
	}
	p.detail = map[string]any{"failures": fs, "skipped": res.Skipped}
	if err == nil && len(res.Failures) > 0 {
		err = &CheckError{Failures: res.Failures, Checked: res.Checked}
	}
	p.err = err
}

// finish records every step: succeeded if the transaction committed,
// otherwise failed with the step's own error or the reason for the rollback.
func (r *recorder) finish(ctx context.Context, res *Result, runErr error) error {
	var first error
	for _, p := range r.pending {
		status, err := ledger.Succeeded, p.err
		switch {
		case p.err != nil:
			status = ledger.Failed
		case !res.Committed:
			status = ledger.Failed
			if runErr != nil {
				err = fmt.Errorf("rolled back: %s", firstLine(runErr.Error()))
			} else {
				err = errors.New("rolled back: a rehearsal (--rollback) commits nothing")
			}
		}
		if p.detail == nil {
			p.detail = map[string]any{}
		}
		if ferr := p.step.Finish(ctx, status, p.counts, p.detail, err); ferr != nil && first == nil {
			first = ferr
		}
	}
	return first
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// ModelNames lists names, for messages.
func ModelNames(ms []*Model) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return slices.Clip(out)
}
