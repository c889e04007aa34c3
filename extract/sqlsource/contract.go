package sqlsource

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Relation is one view or table of the source contract (docs/sources.md):
// the columns MIM reads from it, their type families and nullability.
type Relation struct {
	Name    string // upper case, as Oracle names it
	Columns []ContractColumn
}

// ContractColumn is one column of a Relation.
type ContractColumn struct {
	Name string // upper case
	Type Type   // Text, Number or Date
	// Null is "no" (a value is expected), "yes" (NULL is normal) or "?".
	Null string
}

// Contract is the source contract, by relation name (upper case).
type Contract map[string]Relation

var (
	contractHeading = regexp.MustCompile(`^###\s+([A-Za-z][A-Za-z0-9_$#]*)\s*$`)
	contractRow     = regexp.MustCompile(`^\|\s*([A-Za-z][A-Za-z0-9_$#]*)\s*\|\s*(text|number|date)\s*\|\s*(no|yes|\?)\s*\|\s*$`)
)

// ParseContract reads the relations of a contract document: each is a
// "### NAME" heading followed by a table | column | type | null |. A
// table row that does not parse is an error naming its line, so the
// document and the check cannot silently disagree.
func ParseContract(md []byte) (Contract, error) {
	c := Contract{}
	var cur *Relation
	sc := bufio.NewScanner(bytes.NewReader(md))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(text, "#"):
			cur = nil
			if m := contractHeading.FindStringSubmatch(text); m != nil {
				name := strings.ToUpper(m[1])
				if _, dup := c[name]; dup {
					return nil, fmt.Errorf("source contract line %d: %s is described twice", line, name)
				}
				c[name] = Relation{Name: name}
				r := c[name]
				cur = &r
			}
		case cur != nil && strings.HasPrefix(text, "|"):
			if strings.HasPrefix(text, "| column") || strings.HasPrefix(text, "| ---") {
				continue
			}
			m := contractRow.FindStringSubmatch(text)
			if m == nil {
				return nil, fmt.Errorf("source contract line %d: %q is not | COLUMN | text, number or date | no, yes or ? |", line, text)
			}
			col := ContractColumn{Name: strings.ToUpper(m[1]), Null: m[3]}
			switch m[2] {
			case "number":
				col.Type = Number
			case "date":
				col.Type = Date
			}
			cur.Columns = append(cur.Columns, col)
			c[cur.Name] = *cur
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// MustContract parses a contract built into the binary; a contract that
// does not parse is a build mistake, caught by the tests.
func MustContract(md []byte) Contract {
	c, err := ParseContract(md)
	if err != nil {
		panic(err)
	}
	return c
}

// Column returns the contract's column of relation rel, if it has one.
func (c Contract) Column(rel, column string) (ContractColumn, bool) {
	for _, col := range c[strings.ToUpper(rel)].Columns {
		if col.Name == strings.ToUpper(column) {
			return col, true
		}
	}
	return ContractColumn{}, false
}

// RelationCheck is what describing one relation found.
type RelationCheck struct {
	Name string
	// Columns is how many columns the source has.
	Columns int
	// Problems name every missing and every retyped column: the night
	// would fail (or misread) on them.
	Problems []string
	// Notes are differences that do not stop a night (a key column the
	// source marks nullable, columns the contract does not know).
	Notes []string
	// Err is set when the relation could not be described at all (it
	// does not exist, no grant).
	Err error
}

// OK reports a relation that matches the contract.
func (r RelationCheck) OK() bool { return r.Err == nil && len(r.Problems) == 0 }

// describe compares one relation of the source with the contract.
func (s *Source) describe(ctx context.Context, db *DB, rel Relation) RelationCheck {
	out := RelationCheck{Name: rel.Name}
	query, _, err := db.prepare("SELECT * FROM {{schema}}"+rel.Name+" WHERE 1 = 0", s.cfg.Schema, nil)
	if err != nil {
		out.Err = err
		return out
	}
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		out.Err = scrub(err, db.password)
		return out
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		out.Err = fmt.Errorf("reading the column types: %w", err)
		return out
	}
	out.Columns = len(cts)
	type got struct {
		dbType           string
		nullable, knowsN bool
	}
	have := map[string]got{}
	for _, ct := range cts {
		n, ok := ct.Nullable()
		have[strings.ToUpper(ct.Name())] = got{ct.DatabaseTypeName(), n, ok}
	}
	if db.drv.nullability != nil {
		if known, err := db.drv.nullability(ctx, db, s.cfg.Schema, rel.Name); err == nil {
			for name, n := range known {
				if g, ok := have[name]; ok {
					g.nullable, g.knowsN = n, true
					have[name] = g
				}
			}
		}
	}
	var mayBeNull []string
	for _, col := range rel.Columns {
		g, ok := have[col.Name]
		if !ok {
			out.Problems = append(out.Problems, fmt.Sprintf("column %s is missing (the contract reads it as %s)", col.Name, col.Type))
			continue
		}
		if k := classify(g.dbType); k != kindUnknown && !familyOf(col.Type, k) {
			out.Problems = append(out.Problems, fmt.Sprintf("column %s is %s in the source, the contract reads it as %s", col.Name, g.dbType, col.Type))
		}
		if col.Null == "no" && g.knowsN && g.nullable {
			mayBeNull = append(mayBeNull, col.Name)
		}
	}
	if len(mayBeNull) > 0 {
		out.Notes = append(out.Notes, fmt.Sprintf("%s may be NULL in the source where the contract expects a value (such rows will be bad rows)",
			strings.Join(mayBeNull, ", ")))
	}
	extra := 0
	for name := range have {
		if _, ok := findColumn(rel, name); !ok {
			extra++
		}
	}
	if extra > 0 {
		out.Notes = append(out.Notes, fmt.Sprintf("%d more column(s) the contract does not read", extra))
	}
	if err := rows.Err(); err != nil && out.Err == nil {
		out.Err = scrub(err, db.password)
	}
	return out
}

func findColumn(rel Relation, name string) (ContractColumn, bool) {
	for _, c := range rel.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return ContractColumn{}, false
}

// familyOf says whether a source column of family k is of the contract's
// type t. Unlike compatible (what the reader can convert), this is the
// contract's own family: a number stored as text is a retyped column.
func familyOf(t Type, k kind) bool {
	switch k {
	case kindText:
		return t == Text
	case kindNumber:
		return t == Number
	case kindTime:
		return t == Date || t == Timestamp
	}
	return false
}

// relations lists, in order and once each, the relations the selected
// entities read.
func (s *Source) relations() ([]Relation, []string) {
	var out []Relation
	var unknown []string
	seen := map[string]bool{}
	for _, e := range s.entities {
		for _, name := range e.Reads {
			name = strings.ToUpper(name)
			if seen[name] {
				continue
			}
			seen[name] = true
			r, ok := s.cfg.Contract[name]
			if !ok {
				unknown = append(unknown, name)
				continue
			}
			out = append(out, r)
		}
	}
	sort.Strings(unknown)
	return out, unknown
}
