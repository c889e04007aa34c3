package csvfeed

import (
	"bytes"
	"encoding/csv"
	"errors"
	"strings"
	"testing"
)

var fields = []Field{
	{Shortname: "studentno", Required: true},
	{Shortname: "progcode"},
	{Shortname: "programme", Type: Text},
	{Shortname: "ugpg", Type: Menu, Options: []string{"UG", "PG"}},
	{Shortname: "yearlevel", Type: Menu},
	{Shortname: "approved", Type: Checkbox},
	{Shortname: "startdate", Type: Date},
}

func TestWriterOutput(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, fields)
	if err != nil {
		t.Fatal(err)
	}
	rows := [][]string{
		{"mokaf21", "21004567", "UGEOSING01", "Geography BSc", "UG", "2", "1", "2025-09-22"},
		{"jdoe19", "19001234", "TECOSMSC01", `Economics, MSc "Advanced"`, "PG", "1", "0", ""},
		{"o.neill", " 20001111 ", "", "O'Neill Studies – Ünïcode", "", "", "", "2028-02-29"},
	}
	for _, r := range rows {
		if err := w.Write(r[0], r[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := "username,profile_field_studentno,profile_field_progcode,profile_field_programme,profile_field_ugpg,profile_field_yearlevel,profile_field_approved,profile_field_startdate\n" +
		"mokaf21,21004567,UGEOSING01,Geography BSc,UG,2,1,2025-09-22\n" +
		`jdoe19,19001234,TECOSMSC01,"Economics, MSc ""Advanced""",PG,1,0,` + "\n" +
		"o.neill,20001111,,O'Neill Studies – Ünïcode,,,,2028-02-29\n"
	if buf.String() != want {
		t.Errorf("file:\n%s\nwant:\n%s", buf.String(), want)
	}
	// A standard CSV reader gets every row with exactly the header's width.
	r := csv.NewReader(bytes.NewReader(buf.Bytes()))
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || recs[2][3] != `Economics, MSc "Advanced"` || recs[3][1] != "20001111" {
		t.Errorf("read back %q", recs)
	}
	if w.Rows() != 3 {
		t.Errorf("Rows() = %d", w.Rows())
	}
	if strings.HasPrefix(buf.String(), "\xef\xbb\xbf") || strings.Contains(buf.String(), "\r") {
		t.Error("BOM or CR in the file")
	}
}

func TestRowsRefused(t *testing.T) {
	ok := []string{"21004567", "UGEOSING01", "Geography BSc", "UG", "2", "1", "2025-09-22"}
	with := func(i int, v string) []string {
		r := append([]string(nil), ok...)
		r[i] = v
		return r
	}
	cases := []struct {
		name     string
		username string
		values   []string
		field    string
		reason   string
	}{
		{"too few values", "u1", ok[:6], "", "exactly as many"},
		{"too many values", "u1", append(append([]string(nil), ok...), "x"), "", "exactly as many"},
		{"empty username", "", ok, "username", "empty"},
		{"upper-case username", "Mokaf21", ok, "username", "lower case"},
		{"username with a space", "mo kaf", ok, "username", "spaces"},
		{"newline", "u1", with(2, "Geography\nBSc"), "profile_field_programme", "line break"},
		{"carriage return", "u1", with(2, "Geography\rBSc"), "profile_field_programme", "line break"},
		{"control character", "u1", with(2, "Geo\x07"), "profile_field_programme", "control"},
		{"invalid UTF-8", "u1", with(2, "Geo\xff"), "profile_field_programme", "UTF-8"},
		{"backslash before quote", "u1", with(2, `say \"hi\"`), "profile_field_programme", `\"`},
		{"trailing backslash", "u1", with(2, `C:\`), "profile_field_programme", `ends with \`},
		{"menu value not an option", "u1", with(3, "ug"), "profile_field_ugpg", "not one of"},
		{"checkbox 2", "u1", with(5, "2"), "profile_field_approved", "not 0 or 1"},
		{"checkbox yes", "u1", with(5, "yes"), "profile_field_approved", "not 0 or 1"},
		{"date with time", "u1", with(6, "2025-09-22 10:00"), "profile_field_startdate", "YYYY-MM-DD"},
		{"date as seconds", "u1", with(6, "1758499200"), "profile_field_startdate", "YYYY-MM-DD"},
		{"impossible date", "u1", with(6, "2027-02-29"), "profile_field_startdate", "YYYY-MM-DD"},
		{"required empty", "u1", with(0, "  "), "profile_field_studentno", "empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, fields)
			if err != nil {
				t.Fatal(err)
			}
			err = w.Write(c.username, c.values...)
			var re *RowError
			if !errors.As(err, &re) {
				t.Fatalf("want a RowError, got %v", err)
			}
			if re.Row != 1 || re.Username != c.username || re.Field != c.field || !strings.Contains(re.Reason, c.reason) {
				t.Errorf("error %+v; want row 1, field %q, reason with %q", re, c.field, c.reason)
			}
			if !strings.Contains(err.Error(), "row 1") || (c.field != "" && !strings.Contains(err.Error(), c.field)) {
				t.Errorf("message %q does not name the row and field", err)
			}
			// Nothing of the refused row reaches the file.
			_ = w.Close()
			if lines := strings.Count(buf.String(), "\n"); lines != 1 {
				t.Errorf("file has %d lines, want only the header:\n%s", lines, buf.String())
			}
		})
	}
}

func TestDuplicateUsernameNamesBothRows(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, fields[:1])
	_ = w.Write("a1", "1")
	_ = w.Write("b2", "2")
	err := w.Write("a1", "3")
	var re *RowError
	if !errors.As(err, &re) || re.Row != 3 || !strings.Contains(re.Reason, "row 1") {
		t.Fatalf("duplicate username: %v", err)
	}
}

func TestFieldsRefused(t *testing.T) {
	for name, fs := range map[string][]Field{
		"none":                   nil,
		"bad shortname":          {{Shortname: "student no"}},
		"shortname with prefix":  {{Shortname: "profile_field-x"}},
		"repeated":               {{Shortname: "a"}, {Shortname: "b"}, {Shortname: "A"}},
		"unknown type":           {{Shortname: "a", Type: "radio"}},
		"options on text":        {{Shortname: "a", Options: []string{"x"}}},
		"menu option with break": {{Shortname: "a", Type: Menu, Options: []string{"x\ny"}}},
		"empty menu option":      {{Shortname: "a", Type: Menu, Options: []string{""}}},
		"standard auth":          {{Shortname: "auth", Standard: true}},
		"required idnumber":      {{Shortname: "idnumber", Standard: true, Required: true}},
		"idnumber twice":         {IDNumber, {Shortname: "idnumber", Standard: true}},
	} {
		if _, err := NewWriter(&bytes.Buffer{}, fs); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestWriteAfterClose(t *testing.T) {
	w, _ := NewWriter(&bytes.Buffer{}, fields[:1])
	_ = w.Close()
	if err := w.Write("u1", "1"); err == nil {
		t.Error("write after close accepted")
	}
}

// The idnumber column, written only to move a student code after a merge:
// its own name as the column, and an empty cell (which clears it) allowed.
func TestIDNumberColumn(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, []Field{fields[0], IDNumber})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write("uczlspw-old", "", ""); err == nil {
		t.Error("an empty required value was accepted")
	}
	// The row of a merged-away account carries what the site has, empty or
	// not, to clear its idnumber.
	if err := w.WriteCurrent("uczlspw-old", "", ""); err != nil {
		t.Fatal(err)
	}
	if err := w.Write("uczlspw", "21000001", "21000001"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if want := "username,profile_field_studentno,idnumber\nuczlspw-old,,\nuczlspw,21000001,21000001\n"; buf.String() != want {
		t.Errorf("file:\n%s\nwant:\n%s", buf.String(), want)
	}
}
