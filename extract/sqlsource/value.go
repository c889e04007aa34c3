package sqlsource

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// Type is how a column's values are written into the raw payload, whatever
// type the driver hands them over as.
type Type int

const (
	// Text becomes a JSON string exactly as read; CHAR padding is trimmed on
	// the right; an empty string becomes null, as Oracle stores it; C1
	// control characters become the Windows-1252 punctuation they were.
	Text Type = iota
	// Number becomes a JSON number in plain decimal notation with no
	// insignificant zeros ("7.5", "15", "-0.25"), from an Oracle NUMBER, a
	// PostgreSQL integer or numeric, or text holding a number.
	Number
	// Date becomes "YYYY-MM-DD", from a DATE or text in that form. A value
	// with a time of day is refused rather than silently truncated.
	Date
	// Timestamp becomes "YYYY-MM-DDTHH:MM:SSZ", the instant in UTC.
	Timestamp
)

func (t Type) String() string {
	switch t {
	case Number:
		return "number"
	case Date:
		return "date"
	case Timestamp:
		return "timestamp"
	}
	return "text"
}

// kind is a source column's type family as the driver names it.
type kind int

const (
	kindUnknown kind = iota
	kindText
	kindNumber
	kindTime
	kindOther
)

// classify maps a driver's DatabaseTypeName (godror's Oracle names, pgx's
// PostgreSQL names, go-mssqldb's SQL Server names) to a family.
func classify(dbType string) kind {
	switch strings.ToUpper(dbType) {
	case "":
		return kindUnknown
	case "VARCHAR2", "NVARCHAR2", "CHAR", "NCHAR", "LONG", "CLOB", "NCLOB", // Oracle
		"TEXT", "VARCHAR", "BPCHAR", "NAME", "CITEXT", "UNKNOWN", // PostgreSQL
		"NVARCHAR", "NTEXT": // SQL Server
		return kindText
	case "NUMBER", "FLOAT", "DOUBLE", "BINARY_INTEGER",
		"NUMERIC", "INT2", "INT4", "INT8", "FLOAT4", "FLOAT8", "OID",
		"INT", "BIGINT", "SMALLINT", "TINYINT", "DECIMAL", "MONEY", "SMALLMONEY", "REAL":
		return kindNumber
	case "DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP WITH LOCAL TIME ZONE", "TIMESTAMPTZ",
		"DATETIME", "DATETIME2", "SMALLDATETIME", "DATETIMEOFFSET":
		return kindTime
	}
	return kindOther
}

// isChar reports a blank-padded character type.
func isChar(dbType string) bool {
	switch strings.ToUpper(dbType) {
	case "CHAR", "NCHAR", "BPCHAR":
		return true
	}
	return false
}

// compatible says whether a column of family k can be read as t. Text is
// read only from text columns (a NUMBER where the contract says string is a
// schema change to fix, not a row to skip); numbers, dates and timestamps
// may also come from text, parsed row by row.
func compatible(t Type, k kind) bool {
	switch k {
	case kindUnknown:
		return true
	case kindText:
		return true
	case kindNumber:
		return t == Number
	case kindTime:
		return t == Date || t == Timestamp
	}
	return false
}

// column is one SELECT column and how to read it.
type column struct {
	name   string // lower case: the payload key
	typ    Type
	char   bool
	dbType string
	prefix []byte // `"name":`, precomputed
}

// valueError says which column of a row could not be read and why.
type valueError struct {
	column string
	reason string
}

func (e *valueError) Error() string { return "column " + e.column + ": " + e.reason }

func (c *column) fail(format string, args ...any) error {
	return &valueError{column: c.name, reason: fmt.Sprintf(format, args...)}
}

// value converts one driver value to its canonical text (the payload value
// for strings and dates, the JSON number for numbers); null reports SQL NULL.
func (c *column) value(v any) (s string, null bool, err error) {
	if v == nil {
		return "", true, nil
	}
	switch c.typ {
	case Text:
		return c.text(v)
	case Number:
		return c.number(v)
	case Date, Timestamp:
		return c.time(v)
	}
	return "", false, c.fail("unknown type %d", c.typ)
}

func (c *column) text(v any) (string, bool, error) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case []byte:
		s = string(x)
	default:
		return "", false, c.fail("expected text, the driver returned %T", v)
	}
	if !utf8.ValidString(s) {
		return "", false, c.fail("not valid UTF-8 (%s)", describeBadUTF8(s))
	}
	s = cp1252Punctuation(s)
	if c.char {
		s = strings.TrimRight(s, " ")
	}
	if s == "" {
		return "", true, nil
	}
	return s, false, nil
}

// cp1252Punctuation reads C1 control characters (U+0080 to U+009F) as the
// Windows-1252 characters they were typed as. A WE8ISO8859P1 database
// (SITS, CMIS) stores whatever bytes a Windows client sent, so O’Brien's
// apostrophe arrives as byte 0x92, which Oracle converts to U+0092 for an
// AL32UTF8 client: never meant, and refused by every CSV Moodle reads.
func cp1252Punctuation(s string) string {
	has := false
	for _, r := range s {
		if r >= 0x80 && r <= 0x9f {
			has = true
			break
		}
	}
	if !has {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r >= 0x80 && r <= 0x9f {
			if d := charmap.Windows1252.DecodeByte(byte(r)); d != utf8.RuneError {
				r = d
			}
		}
		b.WriteRune(r)
	}
	return b.String()
}

func describeBadUTF8(s string) string {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			return fmt.Sprintf("byte 0x%02X at offset %d", s[i], i)
		}
		i += n
	}
	return "invalid sequence"
}

func (c *column) number(v any) (string, bool, error) {
	var s string
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10), false, nil
	case int32:
		return strconv.FormatInt(int64(x), 10), false, nil
	case int:
		return strconv.Itoa(x), false, nil
	case uint64:
		return strconv.FormatUint(x, 10), false, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", false, c.fail("%v is not a finite number", x)
		}
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return "", false, c.fail("%v is not a finite number", x)
		}
		s = strconv.FormatFloat(float64(x), 'f', -1, 32)
	case string:
		s = x
	case []byte:
		s = string(x)
	case time.Time:
		return "", false, c.fail("expected a number, the driver returned a time")
	case fmt.Stringer: // godror.Number
		s = x.String()
	default:
		return "", false, c.fail("expected a number, the driver returned %T", v)
	}
	n, err := canonicalNumber(s)
	if err != nil {
		return "", false, c.fail("%s", err)
	}
	return n, false, nil
}

// canonicalNumber rewrites a decimal number ("0015.50", ".5", "-1.2E+3",
// "7.5000") in plain notation with no insignificant zeros ("15.5", "0.5",
// "-1200", "7.5"), so every driver's rendering of one value is the same text.
func canonicalNumber(in string) (string, error) {
	s := strings.TrimSpace(in)
	bad := func() (string, error) {
		if len(in) > 40 {
			in = in[:40] + "..."
		}
		return "", fmt.Errorf("%q is not a number", in)
	}
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > 1000 || e < -1000 {
			return bad()
		}
		exp = e
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	if intPart == "" && frac == "" {
		return bad()
	}
	for _, r := range intPart + frac {
		if r < '0' || r > '9' {
			return bad()
		}
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	scale := exp - len(frac) // value = digits × 10^scale
	if digits == "" {
		return "0", nil
	}
	trimmed := strings.TrimRight(digits, "0")
	scale += len(digits) - len(trimmed)
	digits = trimmed
	var out string
	switch {
	case scale >= 0:
		if scale > 400 {
			return "", fmt.Errorf("%q is too large to carry exactly", in)
		}
		out = digits + strings.Repeat("0", scale)
	case -scale < len(digits):
		k := len(digits) + scale
		out = digits[:k] + "." + digits[k:]
	default:
		if -scale-len(digits) > 400 {
			return "", fmt.Errorf("%q is too small to carry exactly", in)
		}
		out = "0." + strings.Repeat("0", -scale-len(digits)) + digits
	}
	if neg {
		out = "-" + out
	}
	return out, nil
}

var dateLayouts = []string{"2006-01-02", "2006-01-02 15:04:05", "2006-01-02T15:04:05", time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05Z07:00"}

func (c *column) time(v any) (string, bool, error) {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case string, []byte:
		s := strings.TrimSpace(asString(x))
		if s == "" {
			return "", true, nil
		}
		parsed := false
		for _, layout := range dateLayouts {
			if p, err := time.Parse(layout, s); err == nil {
				t, parsed = p, true
				break
			}
		}
		if !parsed {
			if len(s) > 40 {
				s = s[:40] + "..."
			}
			return "", false, c.fail("%q is not a valid %s", s, c.typ)
		}
	default:
		return "", false, c.fail("expected a %s, the driver returned %T", c.typ, v)
	}
	if c.typ == Date {
		// A DATE carries no zone: keep its wall clock as stored.
		if t.Hour() != 0 || t.Minute() != 0 || t.Second() != 0 || t.Nanosecond() != 0 {
			return "", false, c.fail("date %s has a time of day (declare the column a timestamp)", t.Format("2006-01-02 15:04:05"))
		}
		return t.Format("2006-01-02"), false, nil
	}
	return t.UTC().Format("2006-01-02T15:04:05Z"), false, nil
}

func asString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return ""
}
