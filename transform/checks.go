package transform

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Check kinds a model may declare in its `-- checks:` header. Each compiles
// to a SELECT whose rows are failures, like a singular test.
const (
	// CheckUnique: unique(a, b) — no two rows share the values of a, b
	// (NULLs count as equal to each other, so two NULL keys are a duplicate).
	CheckUnique = "unique"
	// CheckNotNull: not_null(a, b) — none of the columns is NULL in any row.
	CheckNotNull = "not_null"
	// CheckAcceptedValues: accepted_values(col, 'x', 'y') — every non-NULL
	// value of col, compared as text, is one of the listed values.
	CheckAcceptedValues = "accepted_values"
	// CheckRelationships: relationships(col, stg.other.col2) — every
	// non-NULL value of col exists in col2 of the model stg.other.
	CheckRelationships = "relationships"
	// CheckRowCountMin: row_count_min(n) — the model has at least n rows
	// (an empty staging table after a good extract means a broken model).
	CheckRowCountMin = "row_count_min"
)

// Check is one declared check of a model.
type Check struct {
	Kind    string
	Columns []string // unique, not_null: the columns; accepted_values, relationships: one column
	Values  []string // accepted_values
	RefModel,
	RefColumn string // relationships
	Min  int64  // row_count_min
	Text string // as written, for reports
	Line int    // header line it was declared on
}

func (c Check) String() string { return c.Text }

var identRe = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// parseChecks parses the value of one `-- checks:` line.
func parseChecks(s string) ([]Check, error) {
	p := &checkParser{s: s}
	var out []Check
	for {
		p.space()
		if p.eof() {
			if len(out) == 0 {
				return nil, fmt.Errorf("no checks listed")
			}
			return out, nil
		}
		c, err := p.check()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		p.space()
		if p.eof() {
			return out, nil
		}
		if !p.eat(',') {
			return nil, fmt.Errorf("expected ',' between checks at %q", p.rest())
		}
	}
}

type checkParser struct {
	s string
	i int
}

func (p *checkParser) eof() bool    { return p.i >= len(p.s) }
func (p *checkParser) rest() string { return p.s[p.i:] }

func (p *checkParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *checkParser) eat(c byte) bool {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *checkParser) word() string {
	p.space()
	start := p.i
	for p.i < len(p.s) && (isIdentPart(p.s[p.i]) || p.s[p.i] == '.') && p.s[p.i] != '$' {
		p.i++
	}
	return p.s[start:p.i]
}

// arg is one argument: a name (possibly dotted), a quoted string or a number.
type arg struct {
	text   string
	quoted bool
}

func (p *checkParser) arg() (arg, error) {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == '\'' {
		var b strings.Builder
		j := p.i + 1
		for j < len(p.s) {
			if p.s[j] == '\'' {
				if j+1 < len(p.s) && p.s[j+1] == '\'' {
					b.WriteByte('\'')
					j += 2
					continue
				}
				p.i = j + 1
				return arg{text: b.String(), quoted: true}, nil
			}
			b.WriteByte(p.s[j])
			j++
		}
		return arg{}, fmt.Errorf("unterminated string in %q", p.s)
	}
	w := p.word()
	if w == "" {
		return arg{}, fmt.Errorf("expected a column, a 'string' or a number at %q", p.rest())
	}
	return arg{text: w}, nil
}

func (p *checkParser) check() (Check, error) {
	start := p.i
	kind := p.word()
	if kind == "" {
		return Check{}, fmt.Errorf("expected a check such as unique(col) at %q", p.rest())
	}
	if !p.eat('(') {
		return Check{}, fmt.Errorf("check %s: expected '(' after the name", kind)
	}
	var args []arg
	if !p.eat(')') {
		for {
			a, err := p.arg()
			if err != nil {
				return Check{}, fmt.Errorf("check %s: %w", kind, err)
			}
			args = append(args, a)
			if p.eat(')') {
				break
			}
			if !p.eat(',') {
				return Check{}, fmt.Errorf("check %s: expected ',' or ')' at %q", kind, p.rest())
			}
		}
	}
	c := Check{Kind: kind, Text: strings.TrimSpace(p.s[start:p.i])}
	return c, c.bind(args)
}

// bind checks the arguments of a check against its kind.
func (c *Check) bind(args []arg) error {
	column := func(a arg) (string, error) {
		if a.quoted || !identRe.MatchString(a.text) {
			return "", fmt.Errorf("check %s: %q is not a column name (lower case letters, digits and _)", c.Text, a.text)
		}
		return a.text, nil
	}
	switch c.Kind {
	case CheckUnique, CheckNotNull:
		if len(args) == 0 {
			return fmt.Errorf("check %s: name at least one column", c.Text)
		}
		for _, a := range args {
			col, err := column(a)
			if err != nil {
				return err
			}
			c.Columns = append(c.Columns, col)
		}
	case CheckAcceptedValues:
		if len(args) < 2 {
			return fmt.Errorf("check %s: name a column and at least one accepted 'value'", c.Text)
		}
		col, err := column(args[0])
		if err != nil {
			return err
		}
		c.Columns = []string{col}
		for _, a := range args[1:] {
			if !a.quoted {
				return fmt.Errorf("check %s: accepted values are quoted strings ('%s')", c.Text, a.text)
			}
			c.Values = append(c.Values, a.text)
		}
	case CheckRelationships:
		if len(args) != 2 {
			return fmt.Errorf("check %s: takes a column and model.column (relationships(student_code, stg.sits_student.student_code))", c.Text)
		}
		col, err := column(args[0])
		if err != nil {
			return err
		}
		c.Columns = []string{col}
		parts := strings.Split(args[1].text, ".")
		if args[1].quoted || len(parts) != 3 {
			return fmt.Errorf("check %s: %q is not schema.model.column", c.Text, args[1].text)
		}
		for _, p := range parts {
			if !identRe.MatchString(p) {
				return fmt.Errorf("check %s: %q is not schema.model.column", c.Text, args[1].text)
			}
		}
		c.RefModel, c.RefColumn = parts[0]+"."+parts[1], parts[2]
	case CheckRowCountMin:
		if len(args) != 1 || args[0].quoted {
			return fmt.Errorf("check %s: takes one whole number", c.Text)
		}
		n, err := strconv.ParseInt(args[0].text, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("check %s: %q is not a whole number of 0 or more", c.Text, args[0].text)
		}
		c.Min = n
	default:
		return fmt.Errorf("unknown check %q (known: unique, not_null, accepted_values, relationships, row_count_min)", c.Kind)
	}
	return nil
}

// sql returns the query whose rows are the check's failures on relation rel.
func (c Check) sql(rel string) string {
	q := quoteRelation(rel)
	cols := make([]string, len(c.Columns))
	for i, col := range c.Columns {
		cols[i] = pgx.Identifier{col}.Sanitize()
	}
	list := strings.Join(cols, ", ")
	switch c.Kind {
	case CheckUnique:
		return fmt.Sprintf("SELECT %s, count(*) AS duplicates FROM %s GROUP BY %s HAVING count(*) > 1", list, q, list)
	case CheckNotNull:
		conds := make([]string, len(cols))
		for i, col := range cols {
			conds[i] = col + " IS NULL"
		}
		return fmt.Sprintf("SELECT * FROM %s WHERE %s", q, strings.Join(conds, " OR "))
	case CheckAcceptedValues:
		vals := make([]string, len(c.Values))
		for i, v := range c.Values {
			vals[i] = quoteLiteral(v)
		}
		return fmt.Sprintf("SELECT %s::text AS value, count(*) AS rows FROM %s WHERE %s IS NOT NULL AND %s::text NOT IN (%s) GROUP BY 1",
			cols[0], q, cols[0], cols[0], strings.Join(vals, ", "))
	case CheckRelationships:
		ref := pgx.Identifier{c.RefColumn}.Sanitize()
		return fmt.Sprintf("SELECT c.%s AS value, count(*) AS rows FROM %s c WHERE c.%s IS NOT NULL AND NOT EXISTS (SELECT 1 FROM %s r WHERE r.%s = c.%s) GROUP BY 1",
			cols[0], q, cols[0], quoteRelation(c.RefModel), ref, cols[0])
	case CheckRowCountMin:
		return fmt.Sprintf("SELECT count(*) AS rows, %d AS minimum FROM %s HAVING count(*) < %d", c.Min, q, c.Min)
	}
	panic("transform: unbound check " + c.Kind)
}

// quoteRelation quotes "schema.name".
func quoteRelation(rel string) string {
	schema, name, _ := strings.Cut(rel, ".")
	return pgx.Identifier{schema, name}.Sanitize()
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
