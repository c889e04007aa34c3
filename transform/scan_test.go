package transform

import "testing"

func TestScanSQLQuotedRuns(t *testing.T) {
	for _, c := range []struct {
		sql, problem string
		kind         tokenKind
		text         string
	}{
		{sql: `'it''s'`, kind: tokString, text: `'it''s'`},
		{sql: `E'a\'b' x`, kind: tokString, text: `E'a\'b'`},
		{sql: `'a\' x`, kind: tokString, text: `'a\'`}, // no backslash escape outside E''
		{sql: `"we""ird" x`, kind: tokQuotedIdent, text: `we"ird`},
		{sql: `'open`, problem: "unterminated string literal"},
		{sql: `E'open\'`, problem: "unterminated string literal"},
		{sql: `"open""`, problem: "unterminated quoted identifier"},
	} {
		toks, problem := scanSQL(c.sql)
		if problem != c.problem {
			t.Errorf("%s: problem %q, want %q", c.sql, problem, c.problem)
			continue
		}
		if c.problem != "" {
			continue
		}
		if len(toks) == 0 || toks[0].kind != c.kind || toks[0].text != c.text || toks[0].pos != 0 {
			t.Errorf("%s: first token %+v, want kind %d %q", c.sql, toks, c.kind, c.text)
		}
	}
}
