package transform

import (
	"container/heap"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	sqlfiles "github.com/mimwarehouse/mim/sql"
)

// Layers, in the order they run. A model may depend only on models of its
// own layer or an earlier one.
var layers = []struct {
	Dir, Schema string
}{
	{"staging", "stg"},
	{"intermediate", "int"},
	{"marts", "mart"},
}

// TestsDir holds the singular tests.
const TestsDir = "tests"

// Materializations.
const (
	Table = "table"
	View  = "view"
)

// Model is one SQL model: a SELECT the runner materializes as the relation
// Name (schema.name, the schema given by the layer directory).
type Model struct {
	Name         string // stg.sits_student
	Layer        string // staging, intermediate, marts
	Path         string // staging/sits/sits_student.sql, relative to the project root
	SQL          string // the SELECT, without header and trailing ';'
	Depends      []string
	Checks       []Check
	Materialized string     // table (default) or view
	Indexes      [][]string // column lists, tables only
	Description  string

	rank     int
	bodyLine int // line of the file where SQL starts
}

// Test is a singular test: a SELECT whose rows are failures.
type Test struct {
	Name        string // test:<file name without .sql>
	Path        string
	SQL         string
	Depends     []string
	Description string

	bodyLine int
}

// Project is a loaded, validated set of models and tests.
type Project struct {
	models []*Model // in run order
	tests  []*Test
	byName map[string]*Model
	// children lists each model's direct dependants, sorted by run order.
	children map[string][]*Model
}

// Problem is one thing wrong with a model file.
type Problem struct {
	Path    string
	Line    int
	Message string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.Path, p.Line, p.Message)
	}
	return p.Path + ": " + p.Message
}

// ProjectError lists every problem found while loading models, so one
// attempt shows them all.
type ProjectError struct {
	Problems []Problem
}

func (e *ProjectError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the SQL models have %d problem", len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteString("s")
	}
	b.WriteString(":")
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.String())
	}
	return b.String()
}

// LoadEmbedded loads the models compiled into the binary (sql/staging,
// sql/intermediate, sql/marts, sql/tests).
func LoadEmbedded() (*Project, error) {
	return Load(sqlfiles.Models)
}

var nameRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// Load reads every model under staging/, intermediate/ and marts/ and every
// test under tests/ of fsys, and validates the whole: header syntax, one
// SELECT per file, declared dependencies that exist and respect the layer
// order, relations read in the SQL that are declared, and no cycles. The
// error, if any, is a *ProjectError listing every problem.
func Load(fsys fs.FS) (*Project, error) {
	p := &Project{byName: map[string]*Model{}, children: map[string][]*Model{}}
	var probs []Problem
	add := func(path string, line int, format string, args ...any) {
		probs = append(probs, Problem{Path: path, Line: line, Message: fmt.Sprintf(format, args...)})
	}
	var models []*Model
	for rank, l := range layers {
		files, err := sqlFiles(fsys, l.Dir)
		if err != nil {
			return nil, fmt.Errorf("reading models under %s/: %w", l.Dir, err)
		}
		for _, f := range files {
			src, err := fs.ReadFile(fsys, f)
			if err != nil {
				return nil, fmt.Errorf("reading model %s: %w", f, err)
			}
			base := strings.TrimSuffix(path.Base(f), ".sql")
			if !nameRe.MatchString(base) {
				add(f, 0, "a model's file name must be lower case letters, digits and _ (it names the relation %s.<name>)", l.Schema)
				continue
			}
			m := &Model{Name: l.Schema + "." + base, Layer: l.Dir, Path: f, Materialized: Table, rank: rank}
			if prev, dup := p.byName[m.Name]; dup {
				add(f, 0, "model %s is defined twice (also in %s)", m.Name, prev.Path)
				continue
			}
			if err := parseModel(m, string(src), func(line int, format string, args ...any) { add(f, line, format, args...) }); err == nil {
				p.byName[m.Name] = m
				models = append(models, m)
			}
		}
	}
	testFiles, err := sqlFiles(fsys, TestsDir)
	if err != nil {
		return nil, fmt.Errorf("reading tests under %s/: %w", TestsDir, err)
	}
	for _, f := range testFiles {
		src, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("reading test %s: %w", f, err)
		}
		t := &Test{Name: "test:" + strings.TrimSuffix(path.Base(f), ".sql"), Path: f}
		if parseTest(t, string(src), func(line int, format string, args ...any) { add(f, line, format, args...) }) == nil {
			p.tests = append(p.tests, t)
		}
	}

	// Dependencies: declared ones must exist and respect the layers;
	// relations the SQL reads must be declared.
	for _, m := range models {
		for _, d := range m.Depends {
			dm, ok := p.byName[d]
			switch {
			case d == m.Name:
				add(m.Path, 1, "model %s depends on itself", m.Name)
			case !ok:
				add(m.Path, 1, "unknown dependency %s%s", d, suggestModel(d, p.byName))
			case dm.rank > m.rank:
				add(m.Path, 1, "%s (%s) cannot depend on %s (%s): a layer reads only its own and earlier layers (staging, intermediate, marts)",
					m.Name, m.Layer, d, dm.Layer)
			}
		}
		for _, c := range m.Checks {
			if c.Kind == CheckRelationships {
				if _, ok := p.byName[c.RefModel]; !ok {
					add(m.Path, c.Line, "check %s refers to unknown model %s%s", c.Text, c.RefModel, suggestModel(c.RefModel, p.byName))
				}
			}
		}
		lintReferences(m.Name, m.SQL, m.bodyLine, m.Depends, p.byName, true, func(line int, format string, args ...any) { add(m.Path, line, format, args...) })
	}
	for _, t := range p.tests {
		for _, d := range t.Depends {
			if _, ok := p.byName[d]; !ok {
				add(t.Path, 1, "unknown dependency %s%s", d, suggestModel(d, p.byName))
			}
		}
		lintReferences(t.Name, t.SQL, t.bodyLine, nil, p.byName, false, func(line int, format string, args ...any) { add(t.Path, line, format, args...) })
	}
	if len(probs) > 0 {
		return nil, &ProjectError{Problems: probs}
	}
	order, cycle := topoSort(models, p.byName)
	if cycle != nil {
		return nil, &ProjectError{Problems: []Problem{{Path: p.byName[cycle[0]].Path,
			Message: "dependency cycle: " + strings.Join(cycle, " -> ")}}}
	}
	p.models = order
	for _, m := range order {
		for _, d := range m.Depends {
			p.children[d] = append(p.children[d], m)
		}
	}
	return p, nil
}

// sqlFiles lists dir/**/*.sql in lexical order; a missing dir is empty.
func sqlFiles(fsys fs.FS, dir string) ([]string, error) {
	var out []string
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errorsIsNotExist(err) {
				return fs.SkipDir
			}
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".sql") {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// directives are the header keys a model understands.
var directives = []string{"depends", "checks", "materialized", "indexes", "description"}

// nearDirective returns the directive key is a likely misspelling of
// ("depend", "check", "materialised"), or "". Other "-- word:" lines are
// prose, so a comment such as "-- core_user_get_users: ..." is allowed.
func nearDirective(key string) string {
	for _, d := range directives {
		if editDistance(key, d) <= 2 || strings.HasPrefix(key, d[:len(d)-2]) {
			return d
		}
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// headerKey matches a header line "-- key: value".
var headerKey = regexp.MustCompile(`^--\s*([a-z_]+):\s*(.*?)\s*$`)

type reportFunc func(line int, format string, args ...any)

// header splits a file into its header lines (leading comments and blank
// lines) and body, calling kv for every "-- key: value" line.
func header(src string, kv func(line int, key, value string)) (body string, bodyLine, bodyOffset int) {
	off, line := 0, 1
	for off < len(src) {
		end := strings.IndexByte(src[off:], '\n')
		var l string
		if end < 0 {
			l = src[off:]
			end = len(src) - off
		} else {
			l = src[off : off+end]
			end++
		}
		t := strings.TrimSpace(l)
		if t != "" && !strings.HasPrefix(t, "--") {
			break
		}
		if m := headerKey.FindStringSubmatch(t); m != nil {
			kv(line, m[1], m[2])
		}
		off += end
		line++
	}
	return src[off:], line, off
}

func parseModel(m *Model, src string, report reportFunc) error {
	bad := false
	fail := func(line int, format string, args ...any) {
		bad = true
		report(line, format, args...)
	}
	seen := map[string]int{}
	body, bodyLine, _ := header(src, func(line int, key, value string) {
		if prev, dup := seen[key]; dup && key != "checks" && key != "description" {
			fail(line, "header %q is given twice (also on line %d)", key, prev)
		}
		seen[key] = line
		switch key {
		case "depends":
			for _, d := range splitList(value) {
				if strings.Count(d, ".") != 1 || !nameRe.MatchString(d[strings.IndexByte(d, '.')+1:]) {
					fail(line, "dependency %q is not a model name such as stg.sits_student", d)
					continue
				}
				if slices.Contains(m.Depends, d) {
					fail(line, "dependency %s is listed twice", d)
					continue
				}
				m.Depends = append(m.Depends, d)
			}
		case "checks":
			cs, err := parseChecks(value)
			if err != nil {
				fail(line, "%v", err)
				return
			}
			for i := range cs {
				cs[i].Line = line
			}
			m.Checks = append(m.Checks, cs...)
		case "materialized":
			switch value {
			case Table, View:
				m.Materialized = value
			default:
				fail(line, "materialized: %q is not table or view", value)
			}
		case "indexes":
			idx, err := parseIndexes(value)
			if err != nil {
				fail(line, "indexes: %v", err)
				return
			}
			m.Indexes = append(m.Indexes, idx...)
		case "description":
			m.Description = strings.TrimSpace(m.Description + " " + value)
		default:
			if near := nearDirective(key); near != "" {
				fail(line, "unknown header %q: did you mean %q? (known: depends, checks, materialized, indexes, description)", key, near)
			}
		}
	})
	if m.Materialized == View && len(m.Indexes) > 0 {
		fail(seen["indexes"], "a view cannot have indexes; make it materialized: table")
	}
	sql, err := statementBody(body, bodyLine)
	if err != nil {
		fail(err.line, "%s", err.msg)
	}
	m.SQL, m.bodyLine = sql, bodyLine
	if bad {
		return fmt.Errorf("invalid model")
	}
	return nil
}

func parseTest(t *Test, src string, report reportFunc) error {
	bad := false
	body, bodyLine, _ := header(src, func(line int, key, value string) {
		switch key {
		case "depends":
			t.Depends = append(t.Depends, splitList(value)...)
		case "description":
			t.Description = strings.TrimSpace(t.Description + " " + value)
		default:
			if near := nearDirective(key); near != "" {
				bad = true
				report(line, "unknown header %q in a test: did you mean %q? (known: depends, description)", key, near)
			}
		}
	})
	sql, err := statementBody(body, bodyLine)
	if err != nil {
		bad = true
		report(err.line, "%s", err.msg)
	}
	t.SQL, t.bodyLine = sql, bodyLine
	if bad {
		return fmt.Errorf("invalid test")
	}
	return nil
}

type lineError struct {
	line int
	msg  string
}

// statementBody checks that body is exactly one SELECT (or WITH ... SELECT,
// or VALUES) and returns it without a trailing ';'.
func statementBody(body string, bodyLine int) (string, *lineError) {
	toks, msg := scanSQL(body)
	if msg != "" {
		return "", &lineError{bodyLine, msg}
	}
	if len(toks) == 0 {
		return "", &lineError{bodyLine, "the file has no SQL: a model or test is one SELECT statement"}
	}
	if last := toks[len(toks)-1]; last.kind == tokSemicolon {
		body = body[:last.pos]
		toks = toks[:len(toks)-1]
	}
	for _, t := range toks {
		if t.kind == tokSemicolon {
			return "", &lineError{bodyLine + lineAt(body, t.pos) - 1,
				"more than one statement: a model or test is exactly one SELECT (the runner creates the table or view)"}
		}
	}
	if first := toks[0]; first.kind != tokIdent || (first.text != "select" && first.text != "with" && first.text != "values") {
		if first.kind != tokOther || first.text != "(" {
			return "", &lineError{bodyLine + lineAt(body, first.pos) - 1,
				fmt.Sprintf("the SQL starts with %q: a model or test is a SELECT (or WITH ... SELECT); the runner creates the table or view", first.text)}
		}
	}
	return strings.TrimRight(body, " \t\r\n"), nil
}

// lintReferences reports relations of the model schemas that the SQL reads
// but that are no model, or (for models) that are not declared.
func lintReferences(self, sql string, bodyLine int, depends []string, models map[string]*Model, requireDeclared bool, report reportFunc) {
	toks, _ := scanSQL(sql)
	schemas := map[string]bool{}
	for _, l := range layers {
		schemas[l.Schema] = true
	}
	seen := map[string]bool{}
	for _, r := range references(toks, schemas) {
		if seen[r.name] {
			continue
		}
		seen[r.name] = true
		line := bodyLine + lineAt(sql, r.pos) - 1
		switch {
		case r.name == self:
			report(line, "%s reads itself", self)
		case models[r.name] == nil:
			report(line, "reads %s, which is no model%s", r.name, suggestModel(r.name, models))
		case requireDeclared && !slices.Contains(depends, r.name):
			report(line, "reads %s but does not declare it: add it to -- depends:", r.name)
		}
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseIndexes parses "(a, b), (c)".
func parseIndexes(s string) ([][]string, error) {
	var out [][]string
	rest := strings.TrimSpace(s)
	for rest != "" {
		if rest[0] != '(' {
			return nil, fmt.Errorf("expected (column, ...) at %q", rest)
		}
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			return nil, fmt.Errorf("missing ')' in %q", rest)
		}
		cols := splitList(rest[1:end])
		if len(cols) == 0 {
			return nil, fmt.Errorf("an index needs at least one column")
		}
		for _, c := range cols {
			if !identRe.MatchString(c) {
				return nil, fmt.Errorf("%q is not a column name", c)
			}
		}
		out = append(out, cols)
		rest = strings.TrimSpace(rest[end+1:])
		rest = strings.TrimSpace(strings.TrimPrefix(rest, ","))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no index listed")
	}
	return out, nil
}

func suggestModel(name string, models map[string]*Model) string {
	_, base, _ := strings.Cut(name, ".")
	var close []string
	for n := range models {
		_, b, _ := strings.Cut(n, ".")
		if b == base || strings.Contains(b, base) || strings.Contains(base, b) {
			close = append(close, n)
		}
	}
	if len(close) == 0 {
		return ""
	}
	sort.Strings(close)
	if len(close) > 3 {
		close = close[:3]
	}
	return " (did you mean " + strings.Join(close, " or ") + "?)"
}

// modelHeap orders ready models by layer, then name: the deterministic tie-break.
type modelHeap []*Model

func (h modelHeap) Len() int { return len(h) }
func (h modelHeap) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].Name < h[j].Name
}
func (h modelHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *modelHeap) Push(x any)   { *h = append(*h, x.(*Model)) }
func (h *modelHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// topoSort orders models so every model comes after its dependencies, ties
// broken by layer then name, or returns one cycle (first name repeated last).
func topoSort(models []*Model, byName map[string]*Model) ([]*Model, []string) {
	indeg := map[string]int{}
	dependants := map[string][]*Model{}
	for _, m := range models {
		indeg[m.Name] += 0
		for _, d := range m.Depends {
			indeg[m.Name]++
			dependants[d] = append(dependants[d], m)
		}
	}
	h := &modelHeap{}
	for _, m := range models {
		if indeg[m.Name] == 0 {
			heap.Push(h, m)
		}
	}
	var order []*Model
	for h.Len() > 0 {
		m := heap.Pop(h).(*Model)
		order = append(order, m)
		for _, c := range dependants[m.Name] {
			if indeg[c.Name]--; indeg[c.Name] == 0 {
				heap.Push(h, c)
			}
		}
	}
	if len(order) == len(models) {
		return order, nil
	}
	// Some models remain: every one of them is on or behind a cycle.
	// Walk dependencies from the first (by name) until a model repeats.
	var left []string
	for n, d := range indeg {
		if d > 0 {
			left = append(left, n)
		}
	}
	sort.Strings(left)
	pos := map[string]int{}
	var walk []string
	cur := left[0]
	for {
		if i, ok := pos[cur]; ok {
			return nil, append(walk[i:], cur)
		}
		pos[cur] = len(walk)
		walk = append(walk, cur)
		deps := append([]string(nil), byName[cur].Depends...)
		sort.Strings(deps)
		for _, d := range deps {
			if indeg[d] > 0 {
				cur = d
				break
			}
		}
	}
}

// Models returns every model in run order.
func (p *Project) Models() []*Model { return p.models }

// Tests returns the singular tests in file order.
func (p *Project) Tests() []*Test { return p.tests }

// Model returns the model called name, or nil.
func (p *Project) Model(name string) *Model { return p.byName[name] }

// Descendants returns every model that depends on name, directly or not, in run order.
func (p *Project) Descendants(name string) []*Model {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		for _, c := range p.children[n] {
			if !seen[c.Name] {
				seen[c.Name] = true
				visit(c.Name)
			}
		}
	}
	visit(name)
	return p.inOrder(seen)
}

// Ancestors returns every model name depends on, directly or not, in run order.
func (p *Project) Ancestors(name string) []*Model {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		for _, d := range p.byName[n].Depends {
			if !seen[d] {
				seen[d] = true
				visit(d)
			}
		}
	}
	visit(name)
	return p.inOrder(seen)
}

func (p *Project) inOrder(set map[string]bool) []*Model {
	var out []*Model
	for _, m := range p.models {
		if set[m.Name] {
			out = append(out, m)
		}
	}
	return out
}

// Select returns the models the selectors name, in run order. A selector
// is a model name or a glob over names (stg.sits_*, mart.*), optionally
// with a '+' suffix (and its descendants) and/or a '+' prefix (and its
// ancestors), as in dbt. No selectors selects every model.
func (p *Project) Select(selectors []string) ([]*Model, error) {
	if len(selectors) == 0 {
		return p.models, nil
	}
	set := map[string]bool{}
	for _, sel := range selectors {
		pattern := strings.TrimSpace(sel)
		up := strings.HasPrefix(pattern, "+")
		down := strings.HasSuffix(pattern, "+")
		pattern = strings.TrimSuffix(strings.TrimPrefix(pattern, "+"), "+")
		if _, err := path.Match(pattern, ""); err != nil || pattern == "" {
			return nil, &SelectError{Selector: sel, Reason: "is not a model name or a glob such as stg.sits_*"}
		}
		matched := 0
		for _, m := range p.models {
			if ok, _ := path.Match(pattern, m.Name); !ok {
				continue
			}
			matched++
			set[m.Name] = true
			if down {
				for _, d := range p.Descendants(m.Name) {
					set[d.Name] = true
				}
			}
			if up {
				for _, a := range p.Ancestors(m.Name) {
					set[a.Name] = true
				}
			}
		}
		if matched == 0 {
			return nil, &SelectError{Selector: sel, Reason: "matches no model" + suggestModel(pattern, p.byName)}
		}
	}
	return p.inOrder(set), nil
}

// SelectError is a --select that names nothing.
type SelectError struct{ Selector, Reason string }

func (e *SelectError) Error() string { return fmt.Sprintf("--select %s %s", e.Selector, e.Reason) }

// ExitCode makes a bad selector a usage error.
func (e *SelectError) ExitCode() int { return 2 }
