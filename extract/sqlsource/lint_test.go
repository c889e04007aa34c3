package sqlsource

import (
	"strings"
	"testing"
)

// Every rule fires on the construct it names, says which dialect takes it,
// and stays quiet on the portable spelling.
func TestLintNamesWhatOnlyOneDialectAccepts(t *testing.T) {
	ora := []Dialect{Oracle, PostgreSQL}
	ms := []Dialect{SQLServer, PostgreSQL}
	cases := []struct {
		q        string
		dialects []Dialect
		want     string // "" = no finding
	}{
		{"SELECT A::text FROM V", ora, "line 1: the :: cast is accepted by only postgresql, not by oracle"},
		{"SELECT A FROM V LIMIT 5", ora, "LIMIT is accepted by only postgresql, not by oracle"},
		{"SELECT A FROM V WHERE B ILIKE 'x%'", ora, "ILIKE is accepted by only postgresql"},
		{"SELECT A FROM V WHERE FLAG = TRUE", ora, "TRUE is accepted by only postgresql"},
		{"SELECT NVL(A, 'x') FROM V", ora, "NVL() is accepted by only oracle, not by postgresql"},
		{"SELECT DECODE(A, 1, 'x') FROM V", ora, "DECODE() is accepted by only oracle"},
		{"SELECT SUBSTRING(A, 1, 4) FROM V", ora, "SUBSTRING() is accepted by only postgresql, sqlserver, not by oracle"},
		{"SELECT SUBSTR(A, 1, 4) FROM V", ms, "SUBSTR() is accepted by only oracle, postgresql, not by sqlserver"},
		{"SELECT A || '-' || B FROM V", ms, "|| is accepted by only oracle, postgresql, not by sqlserver"},
		{"SELECT A || 1 FROM V", ora, "|| on a number is accepted by only oracle, not by postgresql"},
		{"SELECT A || QTY FROM V", ora, "|| on a number"},
		{"SELECT TOP 5 A FROM V", ora, "TOP is accepted by only sqlserver, not by oracle, postgresql"},
		{"SELECT ISNULL(A, '') FROM V", ms, "ISNULL() is accepted by only sqlserver, not by postgresql"},
		{"SELECT A FROM V WHERE B = ''", ora, "the empty string '' is accepted by only postgresql, sqlserver, not by oracle"},
		{`SELECT "Mixed" FROM V`, ora, `quoted identifier "Mixed"`},
		{"SELECT [A] FROM V", ms, "bracketed identifier [A] is accepted by only sqlserver, not by postgresql"},
		{"SELECT A FROM {{schema}}V AS X", ora, "AS before a table alias is accepted by only postgresql, sqlserver, not by oracle"},
		{"SELECT CAST(A AS VARCHAR2(10)) FROM V", ora, "CAST to VARCHAR2 is accepted by only oracle"},
		{"SELECT CAST(F(A) AS TEXT) FROM V", ms, "CAST to TEXT is accepted by only postgresql, not by sqlserver"},
		{"SELECT CONCAT(A, '|', B) FROM V", ora, "CONCAT() with more than two arguments is accepted by only postgresql, sqlserver, not by oracle"},
		{"SELECT A FROM V WHERE D > SYSDATE", ora, "SYSDATE is accepted by only oracle"},
		{"SELECT A FROM V MINUS SELECT A FROM W", ms, "MINUS is accepted by only oracle, not by sqlserver, postgresql"},
		{"SELECT A FROM V WHERE B = @p1", ms, "parameter @P1 is accepted by only sqlserver, not by postgresql"},
		// Portable spellings.
		{"SELECT COALESCE(A, 'x'), CAST(B AS VARCHAR(10)) FROM V v WHERE C = :min_year", ora, ""},
		{"SELECT CONCAT(A, '|', B) FROM V WHERE SUBSTRING(C, 1, 2) = 'x'", ms, ""},
		{"-- NVL(x) LIMIT in a comment\nSELECT A FROM V /* ILIKE */ WHERE B = 'it''s :: || NVL('", ora, ""},
		{"SELECT A || '-' FROM V", ora, ""},
	}
	for _, c := range cases {
		got := Lint(c.q, []string{"QTY"}, c.dialects...)
		var texts []string
		for _, f := range got {
			texts = append(texts, f.String())
		}
		all := strings.Join(texts, "\n")
		switch {
		case c.want == "" && len(got) > 0:
			t.Errorf("%q: unexpected findings:\n%s", c.q, all)
		case c.want != "" && !strings.Contains(all, c.want):
			t.Errorf("%q: findings lack %q:\n%s", c.q, c.want, all)
		}
	}
	// Line numbers count the query's lines.
	if f := Lint("SELECT A\nFROM V\nWHERE B ILIKE 'x'", nil, Oracle, PostgreSQL); len(f) != 1 || f[0].Line != 3 {
		t.Errorf("line: %+v", f)
	}
}
