package ims

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata golden files from the writer's output")

func d(s string) Date {
	v, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return v
}

// writeGolden writes the example of testdata/golden.xml (modelled on
// docs/formats.md §1.6, with the escaping and date traps added).
func writeGolden(t *testing.T, w *Writer) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.WriteProperties(Properties{
		Target: "moodle-main", Source: "SITS", DataSource: "MIM run 4711 & friends", Type: "delta",
		DateTime: time.Date(2025, 9, 21, 1, 5, 0, 0, time.FixedZone("BST", 3600)),
	}))
	must(w.WritePerson(Person{IDNumber: "21004567", Username: "mokaf21", Auth: "saml2", Given: "Mia", Family: "O'Kafor",
		Email: "mia.okafor.21@example.ac.uk", Recstatus: 1}))
	must(w.WritePerson(Person{IDNumber: "S004211", Username: "ccxxabc", Auth: "ldap", Given: ` Zoë "Zo" `, Family: "Smith <Jr>", Recstatus: 2}))
	must(w.WriteMembership("GEOG0012-2025-T1", []Member{
		{IDNumber: "21004567", RoleType: "01", Active: true, Begin: d("2025-09-22"), LastDay: d("2026-01-16"), Cohort: "Practical group B & C"},
		{IDNumber: "20987654", RoleType: "01", Active: false, Cohort: "never written for a drop"},
		{IDNumber: "S004211", RoleType: "02", Active: true},
		{IDNumber: "S004211", RoleType: "08", Active: true, LastDay: d("2025-12-31")},
	}))
	must(w.BeginMembership("ECON0001-2025-T2"))
	must(w.WriteMember(Member{IDNumber: "21004567", RoleType: "01", Active: true, Begin: d("2028-01-10"), LastDay: d("2028-02-28")}))
	must(w.EndMembership())
	must(w.Close())
}

func TestWriterGolden(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	writeGolden(t, w)
	path := filepath.Join("testdata", "golden.xml")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != string(want) {
		t.Errorf("output differs from %s:\n%s", path, lineDiff(string(want), got))
	}
	st := w.Stats()
	if st.Persons != 2 || st.Memberships != 2 || st.Members != 5 || st.Active != 4 || st.Drops != 1 || st.Bytes != int64(buf.Len()) {
		t.Errorf("stats = %+v (file has %d bytes)", st, buf.Len())
	}
	sum, err := ValidateBytes(buf.Bytes())
	if err != nil {
		t.Fatalf("the writer's own output does not validate: %v", err)
	}
	if sum.Persons != st.Persons || sum.Memberships != st.Memberships || sum.Members != st.Members ||
		sum.Active != st.Active || sum.Drops != st.Drops || sum.Bytes != st.Bytes || !sum.HasTarget("Moodle-Main") {
		t.Errorf("validate summary %+v does not agree with writer stats %+v", sum, st)
	}
}

func lineDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var a, c string
		if i < len(wl) {
			a = wl[i]
		}
		if i < len(gl) {
			c = gl[i]
		}
		if a != c {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want " + a + "\n  got  " + c + "\n")
		}
	}
	return b.String()
}

// The values a real XML parser reads back are the ones written, so the
// escaping is right for XML; Moodle, which does not decode entities, is
// covered by TestScannerReadsWriterOutput.
func TestWriterEscapingRoundTripsThroughEncodingXML(t *testing.T) {
	names := []string{"O'Neill", `Say "hi"`, "A & B", "<script>", "a>b", "Ünïcödé 名前 🙂", "tab\tinside"}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.WriteProperties(Properties{Target: "t"}); err == nil {
		for i, n := range names {
			err := w.WritePerson(Person{IDNumber: "u" + strconv.Itoa(i), Username: "u" + strconv.Itoa(i), Auth: "manual", Given: n, Family: n})
			if i == len(names)-1 {
				if !IsFieldError(err) {
					t.Fatalf("a tab in a name was accepted: %v", err)
				}
				names = names[:i]
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Persons []struct {
			Given  string `xml:"name>n>given"`
			Family string `xml:"name>n>family"`
		} `xml:"person"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("encoding/xml cannot read the output: %v\n%s", err, buf.String())
	}
	if len(doc.Persons) != len(names) {
		t.Fatalf("read %d persons, wrote %d", len(doc.Persons), len(names))
	}
	for i, p := range doc.Persons {
		if p.Given != names[i] || p.Family != names[i] {
			t.Errorf("person %d read back as %q/%q, written %q", i, p.Given, p.Family, names[i])
		}
	}
	if !strings.Contains(buf.String(), "<given>O'Neill</given>") || !strings.Contains(buf.String(), `<given>Say "hi"</given>`) {
		t.Errorf("quotes must stay literal so Moodle stores them intact:\n%s", buf.String())
	}
}

func TestEndIsTheDayAfterTheLastDay(t *testing.T) {
	for _, c := range []struct{ last, end string }{
		{"2026-01-16", "2026-01-17"},
		{"2025-12-31", "2026-01-01"},
		{"2028-02-28", "2028-02-29"},
		{"2027-02-28", "2027-03-01"},
		{"2025-09-30", "2025-10-01"},
	} {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		_ = w.WriteProperties(Properties{Target: "t"})
		if err := w.WriteMembership("C1", []Member{{IDNumber: "u1", RoleType: "01", Active: true, LastDay: d(c.last)}}); err != nil {
			t.Fatal(err)
		}
		_ = w.Close()
		want := `<timeframe><end restrict="1">` + c.end + `</end></timeframe>`
		if !strings.Contains(buf.String(), want) {
			t.Errorf("last day %s: want %s in\n%s", c.last, want, buf.String())
		}
	}
}

type errWriter struct {
	n   int
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.n >= len(p) {
		e.n -= len(p)
		return len(p), nil
	}
	n := e.n
	e.n = 0
	return n, e.err
}

func TestWriterRefusals(t *testing.T) {
	open := func(t *testing.T) (*Writer, *bytes.Buffer) {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		if err := w.WriteProperties(Properties{Target: "moodle-main"}); err != nil {
			t.Fatal(err)
		}
		return w, &buf
	}
	okPerson := Person{IDNumber: "u1", Username: "u1", Auth: "ldap", Given: "A", Family: "B"}
	okMember := Member{IDNumber: "u1", RoleType: "01", Active: true}
	cases := []struct {
		name  string
		do    func(w *Writer) error
		field string // FieldError field, or "" for a sentinel
		is    error
	}{
		{"person delete", func(w *Writer) error { p := okPerson; p.Recstatus = 3; return w.WritePerson(p) }, "", ErrPersonDelete},
		{"person recstatus 7", func(w *Writer) error { p := okPerson; p.Recstatus = 7; return w.WritePerson(p) }, "recstatus", nil},
		{"group delete", func(w *Writer) error { return w.WriteGroup(Group{IDNumber: "C1", Recstatus: 3}) }, "", ErrGroupDelete},
		{"empty person id", func(w *Writer) error { p := okPerson; p.IDNumber = ""; return w.WritePerson(p) }, "idnumber", nil},
		{"upper-case username", func(w *Writer) error { p := okPerson; p.Username = "Mokaf21"; return w.WritePerson(p) }, "username", nil},
		{"auth with a quote", func(w *Writer) error { p := okPerson; p.Auth = `ldap" x="y`; return w.WritePerson(p) }, "auth", nil},
		{"missing auth", func(w *Writer) error { p := okPerson; p.Auth = ""; return w.WritePerson(p) }, "auth", nil},
		{"blank given", func(w *Writer) error { p := okPerson; p.Given = "  "; return w.WritePerson(p) }, "given", nil},
		{"newline in family", func(w *Writer) error { p := okPerson; p.Family = "Smith\nJones"; return w.WritePerson(p) }, "family", nil},
		{"invalid UTF-8", func(w *Writer) error { p := okPerson; p.Given = "Jos\xe9"; return w.WritePerson(p) }, "given", nil},
		{"U+FFFE", func(w *Writer) error { p := okPerson; p.Given = "a\uFFFEb"; return w.WritePerson(p) }, "given", nil},
		{"C1 control", func(w *Writer) error { p := okPerson; p.Given = "a\u0085b"; return w.WritePerson(p) }, "given", nil},
		{"course id with spaces", func(w *Writer) error { return w.BeginMembership(" C1") }, "course idnumber", nil},
		// Longer than Moodle's columns: refused per record, never sent.
		{"course id of 101", func(w *Writer) error { return w.BeginMembership(strings.Repeat("C", 101)) }, "course idnumber", nil},
		{"username of 101", func(w *Writer) error { p := okPerson; p.Username = strings.Repeat("u", 101); return w.WritePerson(p) }, "username", nil},
		{"given of 101", func(w *Writer) error { p := okPerson; p.Given = strings.Repeat("é", 101); return w.WritePerson(p) }, "given", nil},
		{"family escaped past 100", func(w *Writer) error {
			p := okPerson
			p.Family = strings.Repeat("a", 96) + "&"
			return w.WritePerson(p)
		}, "family", nil},
		{"email of 101", func(w *Writer) error {
			p := okPerson
			p.Email = strings.Repeat("e", 90) + "@example.ac"
			return w.WritePerson(p)
		}, "email", nil},
		{"member id of 256", func(w *Writer) error {
			_ = w.BeginMembership("C1")
			m := okMember
			m.IDNumber = strings.Repeat("9", 256)
			return w.WriteMember(m)
		}, "idnumber", nil},
		{"course shortname of 256", func(w *Writer) error {
			return w.WriteGroup(Group{IDNumber: "C1", Short: strings.Repeat("s", 256)})
		}, "short", nil},
		{"course id with ampersand", func(w *Writer) error { return w.BeginMembership("R&D-1") }, "course idnumber", nil},
		{"empty course id", func(w *Writer) error { return w.BeginMembership("") }, "course idnumber", nil},
		{"member id with <", func(w *Writer) error {
			_ = w.BeginMembership("C1")
			m := okMember
			m.IDNumber = "a<b"
			return w.WriteMember(m)
		}, "idnumber", nil},
		{"roletype 1", func(w *Writer) error {
			_ = w.BeginMembership("C1")
			m := okMember
			m.RoleType = "1"
			return w.WriteMember(m)
		}, "roletype", nil},
		{"roletype 09", func(w *Writer) error {
			_ = w.BeginMembership("C1")
			m := okMember
			m.RoleType = "09"
			return w.WriteMember(m)
		}, "roletype", nil},
		{"roletype by name", func(w *Writer) error {
			_ = w.BeginMembership("C1")
			m := okMember
			m.RoleType = "Learner"
			return w.WriteMember(m)
		}, "roletype", nil},
		{"last day before begin", func(w *Writer) error {
			_ = w.BeginMembership("C1")
			m := okMember
			m.Begin, m.LastDay = d("2025-10-01"), d("2025-09-30")
			return w.WriteMember(m)
		}, "last day", nil},
		{"impossible date", func(w *Writer) error {
			_ = w.BeginMembership("C1")
			m := okMember
			m.Begin = Date{2025, 2, 30}
			return w.WriteMember(m)
		}, "begin", nil},
		{"newline in cohort", func(w *Writer) error {
			_ = w.BeginMembership("C1")
			m := okMember
			m.Cohort = "A\nB"
			return w.WriteMember(m)
		}, "cohort", nil},
		{"same user and role twice", func(w *Writer) error {
			_ = w.BeginMembership("C1")
			_ = w.WriteMember(okMember)
			return w.WriteMember(okMember)
		}, "", ErrDuplicate},
		{"course twice", func(w *Writer) error { _ = w.WriteMembership("C1", nil); return w.BeginMembership("C1") }, "", ErrDuplicate},
		{"person after membership", func(w *Writer) error { _ = w.WriteMembership("C1", nil); return w.WritePerson(okPerson) }, "", ErrOrder},
		{"group after membership", func(w *Writer) error { _ = w.WriteMembership("C1", nil); return w.WriteGroup(Group{IDNumber: "C1"}) }, "", ErrOrder},
		{"person after group", func(w *Writer) error { _ = w.WriteGroup(Group{IDNumber: "C1"}); return w.WritePerson(okPerson) }, "", ErrOrder},
		{"member outside a membership", func(w *Writer) error { return w.WriteMember(okMember) }, "", ErrOrder},
		{"membership inside a membership", func(w *Writer) error { _ = w.BeginMembership("C1"); return w.BeginMembership("C2") }, "", ErrOrder},
		{"end without begin", func(w *Writer) error { return w.EndMembership() }, "", ErrOrder},
		{"properties twice", func(w *Writer) error { return w.WriteProperties(Properties{Target: "x"}) }, "", ErrOrder},
		{"close inside a membership", func(w *Writer) error { _ = w.BeginMembership("C1"); return w.Close() }, "", ErrOrder},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, _ := open(t)
			err := c.do(w)
			if err == nil {
				t.Fatal("accepted")
			}
			if c.is != nil {
				if !errors.Is(err, c.is) {
					t.Fatalf("error %v is not %v", err, c.is)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("error %v: want a FieldError on %q", err, c.field)
			}
		})
	}
}

// A refused record writes nothing: the caller can skip it and the file
// stays valid.
func TestRefusedRecordLeavesTheFileValid(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	_ = w.WriteProperties(Properties{Target: "moodle-main"})
	_ = w.BeginMembership("C1")
	if err := w.WriteMember(Member{IDNumber: "u1", RoleType: "01", Active: true}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Member{
		{IDNumber: "u2", RoleType: "99", Active: true},
		{IDNumber: "u3", RoleType: "01", Active: true, Cohort: "x\x00"},
		{IDNumber: "u1", RoleType: "01", Active: true},
	} {
		if err := w.WriteMember(bad); err == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
	if err := w.WriteMember(Member{IDNumber: "u4", RoleType: "02", Active: true}); err != nil {
		t.Fatal(err)
	}
	_ = w.EndMembership()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	sum, err := ValidateBytes(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Members != 2 || w.Stats().Members != 2 {
		t.Errorf("members: file %d, stats %d; want 2", sum.Members, w.Stats().Members)
	}
}

func TestWriterIOErrorIsFinal(t *testing.T) {
	boom := errors.New("disk full")
	ew := &errWriter{n: 40000, err: boom}
	w := NewWriter(ew)
	if err := w.WriteProperties(Properties{Target: "t"}); err != nil {
		t.Fatal(err)
	}
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		if err = w.BeginMembership("C" + strconv.Itoa(i)); err == nil {
			err = w.WriteMember(Member{IDNumber: "u", RoleType: "01", Active: true})
			if err == nil {
				err = w.EndMembership()
			}
		}
	}
	if !errors.Is(err, boom) {
		t.Fatalf("want the write error, got %v", err)
	}
	if err := w.BeginMembership("later"); !errors.Is(err, boom) {
		t.Errorf("the writer went on after a write error: %v", err)
	}
	if err := w.Close(); !errors.Is(err, boom) {
		t.Errorf("Close after a write error = %v", err)
	}
}

func TestCloseWithoutPropertiesFails(t *testing.T) {
	var buf bytes.Buffer
	if err := NewWriter(&buf).Close(); !errors.Is(err, ErrOrder) {
		t.Fatalf("Close of an empty writer = %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %q", buf.String())
	}
}

func TestParseDate(t *testing.T) {
	for _, ok := range []string{"2025-09-22", "2028-02-29", "0001-01-01"} {
		if v, err := ParseDate(ok); err != nil || v.String() != ok {
			t.Errorf("ParseDate(%q) = %v, %v", ok, v, err)
		}
	}
	for _, bad := range []string{"2025-9-22", "2025-09-22T00:00:00", "2027-02-29", "2025-13-01", "2025/09/22", "２０２５-09-22", "", "0000-01-01"} {
		if _, err := ParseDate(bad); err == nil {
			t.Errorf("ParseDate(%q) accepted", bad)
		}
	}
}

// A value longer than Moodle's column is refused by name, with the column
// and its width, so the operator can find and fix the record.
func TestTooLongForMoodleSaysWhichColumn(t *testing.T) {
	w := NewWriter(io.Discard)
	if err := w.WriteProperties(Properties{Target: "moodle-main"}); err != nil {
		t.Fatal(err)
	}
	err := w.WritePerson(Person{IDNumber: "u1", Username: strings.Repeat("u", 101), Auth: "ldap", Given: "A", Family: "B"})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Record != "user u1" ||
		!strings.Contains(err.Error(), "field username is 101 characters, longer than Moodle's user.username (100)") {
		t.Errorf("%v", err)
	}
	// One refused record leaves the writer usable for the next.
	if err := w.WritePerson(Person{IDNumber: "u2", Username: "u2", Auth: "ldap", Given: "A", Family: "B"}); err != nil {
		t.Errorf("the next person: %v", err)
	}
}
