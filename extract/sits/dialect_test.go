package sits_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/extract/cmis"
	"github.com/mimwarehouse/mim/extract/sits"
	"github.com/mimwarehouse/mim/extract/sqlsource"
)

// numberColumns are the contract's numeric columns, for "|| on a number".
func numberColumns(c sqlsource.Contract) []string {
	var out []string
	for _, rel := range c {
		for _, col := range rel.Columns {
			if col.Type == sqlsource.Number {
				out = append(out, col.Name)
			}
		}
	}
	return out
}

// The embedded SELECTs keep to SQL both of their databases accept: SITS and
// CMIS run on Oracle and on the PostgreSQL stand-in, PowerCampus on SQL
// Server and the stand-in. Each finding says what, where, and who takes it.
func TestEmbeddedQueriesKeepToTheirDialects(t *testing.T) {
	c := sits.Contract()
	nums := numberColumns(c)
	for _, set := range []struct {
		source   string
		entities []sqlsource.Entity
		dialects []sqlsource.Dialect
	}{
		{"sits", sits.Entities(), []sqlsource.Dialect{sqlsource.Oracle, sqlsource.PostgreSQL}},
		{"cmis", cmis.Entities(), []sqlsource.Dialect{sqlsource.Oracle, sqlsource.PostgreSQL}},
		{"powercampus", sits.PowerCampusEntities(), []sqlsource.Dialect{sqlsource.SQLServer, sqlsource.PostgreSQL}},
	} {
		for _, e := range set.entities {
			for _, f := range sqlsource.Lint(e.SQL, nums, set.dialects...) {
				t.Errorf("%s/%s: %s", set.source, e.Name, f)
			}
		}
	}
	// And the lint is not blind to these very queries: written for Oracle
	// alone, the PowerCampus CONCATs would be named.
	if f := sqlsource.Lint(sits.PowerCampusEntities()[2].SQL, nums, sqlsource.Oracle, sqlsource.PostgreSQL); len(f) == 0 {
		t.Error("CONCAT with six arguments passed the Oracle lint")
	}
}

var (
	selectStart = regexp.MustCompile(`(?is)^\s*SELECT\s+`)
	fromWord    = regexp.MustCompile(`(?i)^\sFROM\s`)
	lineCmt     = regexp.MustCompile(`--[^\n]*`)
)

// outputColumns are the names a SELECT's outer list gives its columns: the
// alias after AS, else the (qualified) column name.
func outputColumns(t *testing.T, q string) []string {
	t.Helper()
	q = lineCmt.ReplaceAllString(q, "")
	loc := selectStart.FindStringIndex(q)
	if loc == nil {
		t.Fatalf("no SELECT in %q", q)
	}
	// The outer list ends at the first FROM outside parentheses.
	rest, end, depth := q[loc[1]:], -1, 0
	for i := 0; i < len(rest) && end < 0; i++ {
		switch rest[i] {
		case '(':
			depth++
		case ')':
			depth--
		default:
			if depth == 0 && fromWord.MatchString(rest[i:]) {
				end = i
			}
		}
	}
	if end < 0 {
		t.Fatalf("no FROM in %q", q)
	}
	var out []string
	start := 0
	list := rest[:end] + ","
	for i, r := range list {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				item := strings.TrimSpace(list[start:i])
				if j := strings.LastIndex(strings.ToUpper(item), " AS "); j >= 0 {
					item = item[j+4:]
				}
				if j := strings.LastIndex(item, "."); j >= 0 {
					item = item[j+1:]
				}
				out = append(out, strings.ToUpper(strings.TrimSpace(item)))
				start = i + 1
			}
		}
	}
	return out
}

// Every entity's SELECT gives exactly the columns of its SITS view in the
// contract, and declares as numbers and dates exactly the contract's: the
// check that reads docs/sources.md and the extraction cannot disagree.
func TestEntitiesMatchTheContract(t *testing.T) {
	c := sits.Contract()
	check := func(source string, e sqlsource.Entity, rel string) {
		r, ok := c[rel]
		if !ok {
			t.Errorf("%s/%s: the contract has no %s", source, e.Name, rel)
			return
		}
		var want []string
		for _, col := range r.Columns {
			want = append(want, col.Name)
			typ, declared := e.Types[strings.ToLower(col.Name)]
			switch {
			case col.Type == sqlsource.Text && declared:
				t.Errorf("%s/%s: %s is text in the contract but read as %s", source, e.Name, col.Name, typ)
			case col.Type != sqlsource.Text && (!declared || typ != col.Type):
				t.Errorf("%s/%s: %s is %s in the contract but read as %s", source, e.Name, col.Name, col.Type, typ)
			}
		}
		if got := outputColumns(t, e.SQL); !slices.Equal(got, want) {
			t.Errorf("%s/%s: the SELECT gives %v, the contract's %s has %v", source, e.Name, got, rel, want)
		}
		for _, read := range e.Reads {
			if _, ok := c[strings.ToUpper(read)]; !ok {
				t.Errorf("%s/%s reads %s, which the contract does not describe", source, e.Name, read)
			}
		}
	}
	view := map[string]string{}
	for _, e := range sits.Entities() {
		check("sits", e, e.Reads[0])
		view[e.Name] = e.Reads[0]
	}
	for _, e := range cmis.Entities() {
		check("cmis", e, e.Reads[0])
	}
	// PowerCampus presents its tables as the SITS views.
	for _, e := range sits.PowerCampusEntities() {
		check("powercampus", e, view[e.Name])
	}
}
