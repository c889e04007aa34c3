package sqlsource

import (
	"fmt"
	"slices"
	"strings"
)

// Dialect is a database whose SQL the embedded SELECTs must run on.
type Dialect string

// The dialects MIM's sources are read in.
const (
	Oracle     Dialect = "oracle"
	PostgreSQL Dialect = "postgresql"
	SQLServer  Dialect = "sqlserver"
)

// DriverDialect is the SQL a configured driver speaks.
func DriverDialect(driver string) Dialect {
	switch driver {
	case "godror":
		return Oracle
	case "sqlserver":
		return SQLServer
	}
	return PostgreSQL
}

// Finding is one construct of a query that not every wanted dialect
// accepts, or that they read differently.
type Finding struct {
	Line      int
	Construct string
	// Accepted are the dialects that take the construct as MIM means it.
	Accepted []Dialect
	// Rejected are the wanted dialects that do not.
	Rejected []Dialect
	Why      string
}

func (f Finding) String() string {
	acc := "no dialect MIM reads"
	if len(f.Accepted) > 0 {
		acc = "only " + joinDialects(f.Accepted)
	}
	s := fmt.Sprintf("line %d: %s is accepted by %s, not by %s", f.Line, f.Construct, acc, joinDialects(f.Rejected))
	if f.Why != "" {
		s += " (" + f.Why + ")"
	}
	return s
}

func joinDialects(ds []Dialect) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d)
	}
	return strings.Join(out, ", ")
}

var (
	oraPG   = []Dialect{Oracle, PostgreSQL}
	pgMS    = []Dialect{PostgreSQL, SQLServer}
	onlyPG  = []Dialect{PostgreSQL}
	onlyOra = []Dialect{Oracle}
	onlyMS  = []Dialect{SQLServer}
)

// lintRule is a construct and the dialects that accept it.
type lintRule struct {
	accepted []Dialect
	why      string
}

// keywordRules are words (not followed by "(") only some dialects accept.
var keywordRules = map[string]lintRule{
	"LIMIT":        {onlyPG, "Oracle: FETCH FIRST n ROWS ONLY; SQL Server: TOP"},
	"ILIKE":        {onlyPG, "compare UPPER() with LIKE"},
	"TRUE":         {onlyPG, "no boolean literal in Oracle before 23ai nor in SQL Server: compare with 1/0 or 'Y'/'N'"},
	"FALSE":        {onlyPG, "no boolean literal in Oracle before 23ai nor in SQL Server: compare with 1/0 or 'Y'/'N'"},
	"TOP":          {onlyMS, ""},
	"SYSDATE":      {onlyOra, "use CURRENT_TIMESTAMP"},
	"SYSTIMESTAMP": {onlyOra, "use CURRENT_TIMESTAMP"},
	"ROWNUM":       {onlyOra, ""},
	"DUAL":         {onlyOra, ""},
	"MINUS":        {onlyOra, "PostgreSQL and SQL Server say EXCEPT"},
	"EXCEPT":       {pgMS, "Oracle before 21c says MINUS"},
	"CURRENT_DATE": {oraPG, "SQL Server: CAST(GETDATE() AS date)"},
}

// functionRules are function names only some dialects have (or read the
// same way).
var functionRules = map[string]lintRule{
	"NVL":        {onlyOra, "use COALESCE"},
	"NVL2":       {onlyOra, "use CASE"},
	"DECODE":     {onlyOra, "use CASE"},
	"INSTR":      {onlyOra, ""},
	"LISTAGG":    {onlyOra, "PostgreSQL and SQL Server say STRING_AGG"},
	"TO_NUMBER":  {onlyOra, "use CAST(x AS NUMERIC)"},
	"SUBSTR":     {oraPG, "SQL Server says SUBSTRING"},
	"SUBSTRING":  {pgMS, "Oracle says SUBSTR"},
	"LENGTH":     {oraPG, "SQL Server says LEN"},
	"LEN":        {onlyMS, ""},
	"ISNULL":     {onlyMS, "use COALESCE"},
	"IFNULL":     {nil, "use COALESCE"},
	"IIF":        {onlyMS, "use CASE"},
	"GETDATE":    {onlyMS, "use CURRENT_TIMESTAMP"},
	"DATEADD":    {onlyMS, ""},
	"DATEDIFF":   {onlyMS, ""},
	"DATEPART":   {onlyMS, ""},
	"CHARINDEX":  {onlyMS, ""},
	"NOW":        {onlyPG, "use CURRENT_TIMESTAMP"},
	"STRPOS":     {onlyPG, ""},
	"STRING_AGG": {pgMS, "Oracle says LISTAGG"},
	"TO_CHAR":    {oraPG, "SQL Server says FORMAT/CONVERT"},
	"TO_DATE":    {oraPG, ""},
	"CONVERT":    {onlyMS, "Oracle's CONVERT changes the character set instead"},
	"GREATEST":   {oraPG, "SQL Server before 2022 lacks it"},
	"LEAST":      {oraPG, "SQL Server before 2022 lacks it"},
}

// castTypes are the type names in CAST(x AS type) only some dialects know.
var castTypes = map[string]lintRule{
	"VARCHAR2":  {onlyOra, "use VARCHAR"},
	"NUMBER":    {onlyOra, "use NUMERIC"},
	"TEXT":      {onlyPG, "use VARCHAR(n)"},
	"BOOLEAN":   {onlyPG, ""},
	"NVARCHAR":  {onlyMS, ""},
	"DATETIME":  {onlyMS, "use DATE or TIMESTAMP"},
	"DATETIME2": {onlyMS, ""},
}

// token is one lexical item of a query.
type token struct {
	kind byte // 'w' word, 'n' number, 's' string, 'q' quoted identifier, 'b' [bracketed], 'p' punctuation/operator
	text string
	line int
}

// tokenize splits a query, dropping comments and MIM's {{schema}}.
func tokenize(q string) []token {
	q = strings.ReplaceAll(q, "{{schema}}", "")
	var out []token
	line := 1
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				end = len(q) - i - 2
			}
			line += strings.Count(q[i:i+2+end], "\n")
			i += end + 4
		case c == '\'' || c == '"' || c == '[':
			closing := c
			if c == '[' {
				closing = ']'
			}
			j := i + 1
			for j < len(q) {
				if q[j] == closing {
					if closing != ']' && j+1 < len(q) && q[j+1] == closing {
						j += 2
						continue
					}
					break
				}
				j++
			}
			kind := map[byte]byte{'\'': 's', '"': 'q', '[': 'b'}[c]
			out = append(out, token{kind, q[i:min(j+1, len(q))], line})
			line += strings.Count(q[i:min(j+1, len(q))], "\n")
			i = j + 1
		case isWordStart(c):
			j := i + 1
			for j < len(q) && (isWordStart(q[j]) || (q[j] >= '0' && q[j] <= '9') || q[j] == '$' || q[j] == '#') {
				j++
			}
			out = append(out, token{'w', strings.ToUpper(q[i:j]), line})
			i = j
		case c >= '0' && c <= '9' || (c == '.' && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9'):
			j := i + 1
			for j < len(q) && (q[j] >= '0' && q[j] <= '9' || q[j] == '.') {
				j++
			}
			out = append(out, token{'n', q[i:j], line})
			i = j
		default:
			for _, op := range []string{"::", "||", "<>", "!=", ">=", "<="} {
				if strings.HasPrefix(q[i:], op) {
					out = append(out, token{'p', op, line})
					i += len(op)
					goto next
				}
			}
			out = append(out, token{'p', string(c), line})
			i++
		next:
		}
	}
	return out
}

func isWordStart(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_' || c == '@'
}

// Lint lists the constructs of query that not every one of dialects
// accepts, or reads the same way: a SELECT embedded for Oracle and its
// PostgreSQL stand-in must keep to what both take. numbers names the
// columns known to be numeric (from the contract), for "||" on a number.
func Lint(query string, numbers []string, dialects ...Dialect) []Finding {
	toks := tokenize(query)
	var out []Finding
	add := func(t token, construct string, r lintRule) {
		var rejected []Dialect
		for _, d := range dialects {
			if !slices.Contains(r.accepted, d) {
				rejected = append(rejected, d)
			}
		}
		if len(rejected) > 0 {
			out = append(out, Finding{Line: t.line, Construct: construct, Accepted: r.accepted, Rejected: rejected, Why: r.why})
		}
	}
	both := func(a, b Dialect) bool { return slices.Contains(dialects, a) && slices.Contains(dialects, b) }
	isNumber := func(t token) bool {
		return t.kind == 'n' || (t.kind == 'w' && slices.ContainsFunc(numbers, func(n string) bool { return strings.EqualFold(n, t.text) }))
	}
	for i, t := range toks {
		prev, next := token{}, token{}
		if i > 0 {
			prev = toks[i-1]
		}
		if i+1 < len(toks) {
			next = toks[i+1]
		}
		switch t.kind {
		case 'q':
			if both(Oracle, PostgreSQL) {
				out = append(out, Finding{Line: t.line, Construct: "quoted identifier " + t.text, Accepted: nil,
					Rejected: []Dialect{Oracle, PostgreSQL}, Why: "case-sensitive: Oracle folds unquoted names to upper case, PostgreSQL to lower case"})
			}
		case 'b':
			add(t, "bracketed identifier "+t.text, lintRule{onlyMS, "write the name unquoted"})
		case 's':
			if t.text == "''" && slices.Contains(dialects, Oracle) && len(dialects) > 1 {
				out = append(out, Finding{Line: t.line, Construct: "the empty string ''", Accepted: []Dialect{PostgreSQL, SQLServer},
					Rejected: []Dialect{Oracle}, Why: "Oracle stores '' as NULL, so = '' is never true there: use IS NULL"})
			}
		case 'p':
			switch t.text {
			case "::":
				add(t, "the :: cast", lintRule{onlyPG, "use CAST(x AS type)"})
			case "||":
				add(t, "||", lintRule{oraPG, "SQL Server concatenates with + : use CONCAT()"})
				if isNumber(prev) || isNumber(next) {
					add(t, "|| on a number", lintRule{onlyOra, "PostgreSQL refuses number || number: CAST it to VARCHAR first"})
				}
			}
		case 'w':
			if strings.HasPrefix(t.text, "@") {
				add(t, "parameter "+t.text, lintRule{onlyMS, "MIM binds :name parameters for each driver"})
				continue
			}
			if prev.kind == 'p' && prev.text == ":" {
				continue // one of MIM's :name parameters
			}
			if next.kind == 'p' && next.text == "(" {
				if r, ok := functionRules[t.text]; ok {
					add(t, t.text+"()", r)
				}
				if t.text == "CONCAT" && concatArgs(toks[i+1:]) > 2 {
					add(t, "CONCAT() with more than two arguments", lintRule{pgMS, "Oracle's CONCAT takes two: nest them"})
				}
				continue
			}
			if r, ok := keywordRules[t.text]; ok && r.accepted != nil {
				add(t, t.text, r)
			}
			if (t.text == "FROM" || t.text == "JOIN") && next.kind == 'w' {
				j := i + 2
				for j+1 < len(toks) && toks[j].text == "." {
					j += 2
				}
				if j < len(toks) && toks[j].kind == 'w' && toks[j].text == "AS" {
					add(toks[j], "AS before a table alias", lintRule{pgMS, "Oracle takes the alias without AS"})
				}
			}
		}
	}
	// CAST(x AS type): the type name decides.
	for i := 0; i+3 < len(toks); i++ {
		if toks[i].text == "CAST" && toks[i+1].text == "(" {
			depth := 0
			for j := i + 1; j+1 < len(toks); j++ {
				switch toks[j].text {
				case "(":
					depth++
				case ")":
					depth--
				}
				if depth == 1 && toks[j].text == "AS" && toks[j].kind == 'w' {
					if r, ok := castTypes[toks[j+1].text]; ok {
						add(toks[j+1], "CAST to "+toks[j+1].text, r)
					}
				}
				if depth == 0 {
					break
				}
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Finding) int { return a.Line - b.Line })
	return out
}

// concatArgs counts the arguments of the call whose "(" starts toks.
func concatArgs(toks []token) int {
	depth, n := 0, 1
	for _, t := range toks {
		switch t.text {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				return n
			}
		case ",":
			if depth == 1 {
				n++
			}
		}
	}
	return n
}
