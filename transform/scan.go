package transform

import (
	"strings"
	"unicode/utf8"
)

// token is one lexical element of a model's SQL that matters to the loader:
// bare identifiers (for finding relation references), statement separators,
// dots and the rest. Comments, strings and quoted identifiers are skipped
// whole, so a ';' or "stg.x" inside them never counts.
type token struct {
	kind tokenKind
	text string // identifiers lower-cased; others as written
	pos  int    // byte offset in the scanned text
	end  int    // byte offset just past it (identifiers)
}

type tokenKind int

const (
	tokIdent tokenKind = iota
	tokQuotedIdent
	tokDot
	tokSemicolon
	tokString
	tokOther
)

// scanSQL tokenizes PostgreSQL SQL well enough to find statement boundaries
// and schema-qualified names: line and nested block comments, '...' and
// E'...' strings, "quoted" identifiers and $tag$...$tag$ bodies. It returns
// an error message (not an error) for an unterminated construct.
func scanSQL(s string) ([]token, string) {
	var toks []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			j := strings.IndexByte(s[i:], '\n')
			if j < 0 {
				i = len(s)
			} else {
				i += j + 1
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			depth, j := 1, i+2
			for j < len(s) && depth > 0 {
				switch {
				case strings.HasPrefix(s[j:], "/*"):
					depth++
					j += 2
				case strings.HasPrefix(s[j:], "*/"):
					depth--
					j += 2
				default:
					j++
				}
			}
			if depth > 0 {
				return toks, "unterminated /* comment"
			}
			i = j
		case c == '\'' || ((c == 'e' || c == 'E') && i+1 < len(s) && s[i+1] == '\'' && !identBefore(s, i)):
			start := i
			backslash := c != '\''
			if backslash {
				i++
			}
			j, closed := quoted(s, i+1, '\'', backslash)
			if !closed {
				return toks, "unterminated string literal"
			}
			toks = append(toks, token{kind: tokString, text: s[start:j], pos: start})
			i = j
		case c == '"':
			j, closed := quoted(s, i+1, '"', false)
			if !closed {
				return toks, "unterminated quoted identifier"
			}
			toks = append(toks, token{kind: tokQuotedIdent, text: strings.ReplaceAll(s[i+1:j-1], `""`, `"`), pos: i, end: j})
			i = j
		case c == '$' && dollarTag(s[i:]) != "":
			tag := dollarTag(s[i:])
			end := strings.Index(s[i+len(tag):], tag)
			if end < 0 {
				return toks, "unterminated " + tag + " string"
			}
			toks = append(toks, token{kind: tokString, text: s[i : i+len(tag)+end+len(tag)], pos: i})
			i += len(tag) + end + len(tag)
		case isIdentStart(c):
			j := i + 1
			for j < len(s) && isIdentPart(s[j]) {
				j++
			}
			toks = append(toks, token{kind: tokIdent, text: strings.ToLower(s[i:j]), pos: i, end: j})
			i = j
		case c == '.':
			toks = append(toks, token{kind: tokDot, text: ".", pos: i})
			i++
		case c == ';':
			toks = append(toks, token{kind: tokSemicolon, text: ";", pos: i})
			i++
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		default:
			_, size := utf8.DecodeRuneInString(s[i:])
			toks = append(toks, token{kind: tokOther, text: s[i : i+size], pos: i})
			i += size
		}
	}
	return toks, ""
}

// identBefore reports whether s[i] continues an identifier (so "some'x'" is
// not an E-string).
func identBefore(s string, i int) bool {
	return i > 0 && isIdentPart(s[i-1])
}

// dollarTag returns "$tag$" if s starts a dollar-quoted string, else "".
// "$1" (a parameter) is not a tag.
func dollarTag(s string) string {
	if len(s) < 2 || s[0] != '$' {
		return ""
	}
	if s[1] == '$' {
		return "$$"
	}
	if !isIdentStart(s[1]) {
		return ""
	}
	for j := 2; j < len(s); j++ {
		switch {
		case s[j] == '$':
			return s[:j+1]
		case !isIdentPart(s[j]) || s[j] == '$':
			return ""
		}
	}
	return ""
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isIdentPart(c byte) bool {
	return isIdentStart(c) || (c >= '0' && c <= '9') || c == '$'
}

// reference is a schema-qualified relation named in SQL.
type reference struct {
	name string // schema.relation, lower case
	pos  int
	end  int // just past the relation's name
}

// references returns the schema.relation names in toks whose schema is one
// of schemas, in order of appearance. "x.stg.y" (a three-part name) is not
// matched, nor is anything inside strings or comments.
func references(toks []token, schemas map[string]bool) []reference {
	var out []reference
	for i := 0; i+2 < len(toks); i++ {
		t := toks[i]
		if t.kind != tokIdent || !schemas[t.text] || toks[i+1].kind != tokDot {
			continue
		}
		if i > 0 && toks[i-1].kind == tokDot {
			continue
		}
		n := toks[i+2]
		if n.kind != tokIdent && n.kind != tokQuotedIdent {
			continue
		}
		out = append(out, reference{name: t.text + "." + n.text, pos: t.pos, end: n.end})
	}
	return out
}

// lineAt returns the 1-based line of byte offset pos in s.
func lineAt(s string, pos int) int {
	if pos > len(s) {
		pos = len(s)
	}
	return strings.Count(s[:pos], "\n") + 1
}

// quoted finds the end of a run quoted by q that starts at j, just after
// the opening quote: a doubled q stands for itself, and with backslash (an
// E'...' string) so does any character after a backslash. It returns the
// index just past the closing quote, and whether there was one.
func quoted(s string, j int, q byte, backslash bool) (int, bool) {
	for j < len(s) {
		switch {
		case backslash && s[j] == '\\':
			j += 2
		case s[j] != q:
			j++
		case j+1 < len(s) && s[j+1] == q:
			j += 2
		default:
			return j + 1, true
		}
	}
	return j, false
}
