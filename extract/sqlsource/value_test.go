package sqlsource

import (
	"strings"
	"testing"
	"time"
)

func TestCanonicalNumber(t *testing.T) {
	for in, want := range map[string]string{
		"15": "15", "15.00": "15", "0015.50": "15.5", ".5": "0.5", "-.5": "-0.5", "+7": "7",
		"7.5000": "7.5", "0": "0", "-0": "0", "0.000": "0", "1E+3": "1000", "1.5e2": "150",
		"-1.2E+3": "-1200", "12.5e-3": "0.0125", "100": "100", "1000.0010": "1000.001",
		" 42 ": "42", "9007199254740993": "9007199254740993", "0.1": "0.1", "5.": "5",
	} {
		got, err := canonicalNumber(in)
		if err != nil || got != want {
			t.Errorf("canonicalNumber(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-", ".", "1.2.3", "abc", "1e", "1e5000", "12a", "1,5", "NaN", "--1"} {
		if got, err := canonicalNumber(in); err == nil {
			t.Errorf("canonicalNumber(%q) = %q, want an error", in, got)
		}
	}
}

type stringer string

func (s stringer) String() string { return string(s) }

func TestColumnValues(t *testing.T) {
	text := &column{name: "t", typ: Text}
	char := &column{name: "c", typ: Text, char: true}
	num := &column{name: "n", typ: Number}
	date := &column{name: "d", typ: Date}
	ts := &column{name: "ts", typ: Timestamp}
	london, _ := time.LoadLocation("Europe/London")
	cases := []struct {
		c       *column
		in      any
		want    string
		null    bool
		wantErr string
	}{
		{text, "  padded  ", "  padded  ", false, ""},
		{text, []byte("Nguyễn"), "Nguyễn", false, ""},
		{text, "", "", true, ""}, // Oracle stores '' as NULL; PostgreSQL copies read the same
		{text, nil, "", true, ""},
		{text, "caf\xe9", "", false, "column t: not valid UTF-8 (byte 0xE9 at offset 3)"},
		{text, int64(3), "", false, "expected text"},
		{char, "ab   ", "ab", false, ""},
		{char, "   ", "", true, ""},
		{char, " x ", " x", false, ""},
		{num, int64(15), "15", false, ""},
		{num, "7.50", "7.5", false, ""},
		{num, stringer("-.25"), "-0.25", false, ""},
		{num, 2.5, "2.5", false, ""},
		{num, float32(0.1), "0.1", false, ""},
		{num, "seven", "", false, `column n: "seven" is not a number`},
		{num, time.Now(), "", false, "expected a number"},
		{date, time.Date(2025, 9, 22, 0, 0, 0, 0, time.UTC), "2025-09-22", false, ""},
		{date, time.Date(2025, 9, 22, 0, 0, 0, 0, london), "2025-09-22", false, ""},
		{date, "2025-09-22", "2025-09-22", false, ""},
		{date, []byte("2025-09-22 00:00:00"), "2025-09-22", false, ""},
		{date, "2025-02-30", "", false, `column d: "2025-02-30" is not a valid date`},
		{date, time.Date(2025, 9, 22, 13, 45, 0, 0, time.UTC), "", false, "has a time of day"},
		{date, "", "", true, ""},
		{ts, time.Date(2025, 9, 22, 13, 45, 7, 500, london), "2025-09-22T12:45:07Z", false, ""},
		{ts, "2025-09-22 13:45:07", "2025-09-22T13:45:07Z", false, ""},
		{ts, int64(5), "", false, "expected a timestamp"},
	}
	for _, tc := range cases {
		got, null, err := tc.c.value(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s(%#v): err %v, want %q", tc.c.typ, tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want || null != tc.null {
			t.Errorf("%s(%#v) = %q null=%v err=%v; want %q null=%v", tc.c.typ, tc.in, got, null, err, tc.want, tc.null)
		}
	}
}

func TestPrepareRendersEachDialect(t *testing.T) {
	q := "-- keeps years from :min_year on\nSELECT A FROM {{schema}}V WHERE :min_year = '0000' OR SUBSTR(Y, 1, 4) >= :min_year -- :min_year again\n"
	pg := &DB{drv: drivers["pgx"]}
	got, args, err := pg.prepare(q, "SISMGR", map[string]any{"min_year": "2025"})
	if err != nil || got != "SELECT A FROM SISMGR.V WHERE $1 = '0000' OR SUBSTR(Y, 1, 4) >= $2" || len(args) != 2 || args[1] != "2025" {
		t.Errorf("pgx: %q %v %v", got, args, err)
	}
	if got, _, _ := pg.prepare(q, "", map[string]any{"min_year": "0000"}); !strings.HasPrefix(got, "SELECT A FROM V WHERE") {
		t.Errorf("no schema: %q", got)
	}
	if _, _, err := pg.prepare(q, "SISMGR; DROP TABLE x", map[string]any{"min_year": "2025"}); err == nil {
		t.Error("a schema that is not an identifier must be refused")
	}
	if _, _, err := pg.prepare(q, "", nil); err == nil || !strings.Contains(err.Error(), "min_year") {
		t.Errorf("missing parameter: %v", err)
	}
	ms := &DB{drv: drivers["sqlserver"]}
	if got, _, err := ms.prepare(q, "dbo", map[string]any{"min_year": "2025"}); err != nil ||
		got != "SELECT A FROM dbo.V WHERE @p1 = '0000' OR SUBSTR(Y, 1, 4) >= @p2" {
		t.Errorf("sqlserver: %q %v", got, err)
	}
	if d, ok := drivers["godror"]; ok && d.unavailable == "" {
		ora := &DB{drv: d}
		got, _, err := ora.prepare(q, "SISMGR", map[string]any{"min_year": "2025"})
		if err != nil || got != "SELECT A FROM SISMGR.V WHERE :1 = '0000' OR SUBSTR(Y, 1, 4) >= :2" {
			t.Errorf("godror: %q %v", got, err)
		}
	}
}

func TestTrailingOrderByIsDroppedForCounting(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT A FROM V\nORDER BY A, B":                            "SELECT A FROM V",
		"SELECT A FROM V WHERE X IN (SELECT Y FROM W ORDER BY Y)":   "SELECT A FROM V WHERE X IN (SELECT Y FROM W ORDER BY Y)",
		"SELECT A FROM V WHERE X IN (SELECT Y FROM W)\n order by A": "SELECT A FROM V WHERE X IN (SELECT Y FROM W)",
		"SELECT A FROM V": "SELECT A FROM V",
	} {
		if got := trailingOrderBy.ReplaceAllString(in, ""); got != want {
			t.Errorf("%q -> %q, want %q", in, got, want)
		}
	}
}
