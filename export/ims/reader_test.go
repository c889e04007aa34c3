package ims

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func scanAll(t *testing.T, s string) []Element {
	t.Helper()
	sc := NewScanner(strings.NewReader(s))
	var out []Element
	for sc.Scan() {
		out = append(out, sc.Element())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestScannerReadsWriterOutput(t *testing.T) {
	var buf bytes.Buffer
	writeGolden(t, NewWriter(&buf))
	els := scanAll(t, buf.String())
	if len(els) != 5 {
		t.Fatalf("read %d elements, want properties, 2 persons, 2 memberships: %#v", len(els), els)
	}
	p, ok := els[0].(*PropertiesElement)
	if !ok {
		t.Fatalf("first element is %T, want properties", els[0])
	}
	if !p.HasTarget("moodle-main") || !p.HasTarget("MOODLE-MAIN") || p.HasTarget("moodle") || p.HasTarget("moodle-main2") {
		t.Errorf("target matching wrong; targets %v", p.Targets())
	}
	wantPerson := &PersonElement{IDNumber: "21004567", Username: "mokaf21", Auth: "saml2", Given: "Mia", Family: "O'Kafor",
		Email: "mia.okafor.21@example.ac.uk", Recstatus: 1}
	if !reflect.DeepEqual(els[1], wantPerson) {
		t.Errorf("person = %+v\nwant %+v", els[1], wantPerson)
	}
	// Moodle does not decode entities: the escaped text is what it stores.
	if got := els[2].(*PersonElement); got.Family != "Smith &lt;Jr&gt;" || got.Given != `Zoë "Zo"` || got.Recstatus != 2 {
		t.Errorf("second person = %+v", got)
	}
	m := els[3].(*MembershipElement)
	want := &MembershipElement{CourseIDNumber: "GEOG0012-2025-T1", Members: []MemberElement{
		{IDNumber: "21004567", RoleType: "01", Status: "1", Begin: d("2025-09-22"), End: d("2026-01-17"), Cohort: "Practical group B &amp; C"},
		{IDNumber: "20987654", RoleType: "01", Status: "0", Recstatus: 3},
		{IDNumber: "S004211", RoleType: "02", Status: "1"},
		{IDNumber: "S004211", RoleType: "08", Status: "1", End: d("2026-01-01")},
	}}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("membership = %+v\nwant %+v", m, want)
	}
	enrol := []bool{true, false, true, true}
	for i, mm := range m.Members {
		if mm.Enrol() != enrol[i] {
			t.Errorf("member %d Enrol() = %v", i, mm.Enrol())
		}
	}
	if m2 := els[4].(*MembershipElement); m2.CourseIDNumber != "ECON0001-2025-T2" || m2.Members[0].End != d("2028-02-29") {
		t.Errorf("second membership = %+v", m2)
	}
}

// The documented example of docs/formats.md §1.6 reads as the text below it says.
func TestScannerReadsTheFormatsExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "formats-example.xml"))
	if err != nil {
		t.Fatal(err)
	}
	els := scanAll(t, string(b))
	if len(els) != 3 {
		t.Fatalf("%d elements", len(els))
	}
	if !els[0].(*PropertiesElement).HasTarget("moodle-prod") {
		t.Error("target moodle-prod not found")
	}
	if p := els[1].(*PersonElement); p.IDNumber != "21004567" || p.Username != "mokaf21" || p.Auth != "saml2" {
		t.Errorf("person = %+v", p)
	}
	ms := els[2].(*MembershipElement)
	if ms.CourseIDNumber != "GEOG0012-2025-T1" || len(ms.Members) != 3 {
		t.Fatalf("membership = %+v", ms)
	}
	a, drop, staff := ms.Members[0], ms.Members[1], ms.Members[2]
	if !a.Enrol() || a.Begin != d("2025-09-22") || a.End != d("2026-01-17") || a.Cohort != "Practical group B" {
		t.Errorf("first member = %+v", a)
	}
	if drop.Enrol() || drop.IDNumber != "20987654" || drop.RoleType != "01" {
		t.Errorf("drop = %+v", drop)
	}
	if !staff.Enrol() || staff.RoleType != "02" || staff.IDNumber != "S004211" || !staff.Begin.IsZero() {
		t.Errorf("staff = %+v", staff)
	}
}

// Moodle's reader has traps; the Scanner must fall into them exactly as
// Moodle does, or the simulator would approve files Moodle mangles.
func TestScannerKeepsMoodlesQuirks(t *testing.T) {
	t.Run("everything on one line: groups, persons, memberships, then properties", func(t *testing.T) {
		one := `<?xml version="1.0" encoding="UTF-8"?><enterprise><properties><target>x</target></properties>` +
			`<membership><sourcedid><id>C1</id></sourcedid></membership><person><sourcedid><id>P1</id></sourcedid></person>` +
			`<group><sourcedid><id>G1</id></sourcedid></group></enterprise>`
		var kinds []string
		for _, e := range scanAll(t, one) {
			kinds = append(kinds, reflect.TypeOf(e).Elem().Name())
		}
		want := []string{"GroupElement", "PersonElement", "MembershipElement", "PropertiesElement"}
		if !reflect.DeepEqual(kinds, want) {
			t.Errorf("order %v, want %v", kinds, want)
		}
	})
	t.Run("elements inside comments are processed", func(t *testing.T) {
		els := scanAll(t, "<enterprise>\n<!-- <membership><sourcedid><id>C9</id></sourcedid>\n</membership> -->\n</enterprise>\n")
		if len(els) != 1 || els[0].(*MembershipElement).CourseIDNumber != "C9" {
			t.Errorf("got %#v", els)
		}
	})
	t.Run("a closing tag with a space is never seen", func(t *testing.T) {
		if els := scanAll(t, "<membership><sourcedid><id>C1</id></sourcedid>\n</membership >\n"); len(els) != 0 {
			t.Errorf("got %#v", els)
		}
	})
	t.Run("comments are dropped, but an element closed inside them is read first", func(t *testing.T) {
		els := scanAll(t, "<comments>\n<person><sourcedid><id>P1</id></sourcedid></person> hidden\n</comments>\n<person><sourcedid><id>P2</id></sourcedid>\n</person>\n")
		// The person inside <comments> closes on the same line as it opens;
		// the line has no </comments>, so Moodle processes that person first.
		var ids []string
		for _, e := range els {
			ids = append(ids, e.(*PersonElement).IDNumber)
		}
		if !reflect.DeepEqual(ids, []string{"P1", "P2"}) {
			t.Errorf("persons %v", ids)
		}
	})
	t.Run("member rules", func(t *testing.T) {
		file := "<membership>\n<sourcedid><id>C1</id></sourcedid>\n" +
			`<member><sourcedid><id>nostatus</id></sourcedid><role roletype="01"></role></member>` + "\n" +
			`<member><sourcedid><id>contradiction</id></sourcedid><role roletype="01" recstatus="3"><status>1</status></role></member>` + "\n" +
			`<member><sourcedid><id>spaced</id></sourcedid><role roletype="01"><status> 1 </status></role></member>` + "\n" +
			`<member><sourcedid><id>second-attr</id></sourcedid><role recstatus="1" roletype="01"><status>1</status></role></member>` + "\n" +
			`<member><sourcedid><id>norestrict</id></sourcedid><role roletype="01"><status>1</status><timeframe><begin>2025-01-01</begin><end restrict="1">2025-13-01</end></timeframe></role></member>` + "\n" +
			`<member><sourcedid><id>cdata</id></sourcedid><role roletype="01"><status>1</status><extension><cohort><![CDATA[G1]]></cohort></extension></role></member>` + "\n" +
			`<member idtype="1"><sourcedid><id>attr-on-member</id></sourcedid><role roletype="01"><status>1</status></role></member>` + "\n" +
			"</membership>\n"
		ms := scanAll(t, file)[0].(*MembershipElement)
		got := map[string]MemberElement{}
		for _, m := range ms.Members {
			got[m.IDNumber] = m
		}
		if m := got["nostatus"]; m.Enrol() {
			t.Error("a missing status must read as a drop")
		}
		if m := got["contradiction"]; m.Enrol() {
			t.Error("recstatus 3 must win over status 1")
		}
		if m := got["spaced"]; !m.Enrol() || m.Status != "1" {
			t.Errorf("status is trimmed: %+v", m)
		}
		if m := got["second-attr"]; m.RoleType != "" {
			t.Errorf("roletype must be read only as the first attribute: %+v", m)
		}
		if m := got["norestrict"]; !m.Begin.IsZero() || m.End != d("2026-01-01") {
			t.Errorf("dates without restrict are ignored, months roll over like mktime: %+v", m)
		}
		if m := got["cdata"]; m.Cohort != "<![CDATA[G1]]>" {
			t.Errorf("CDATA is stored literally: %+v", m)
		}
		if _, ok := got["attr-on-member"]; ok {
			t.Error("<member> with an attribute is not a member to Moodle")
		}
	})
	t.Run("target compared exactly, case aside", func(t *testing.T) {
		p := scanAll(t, "<properties>\n<target> moodle-main </target>\n<target>Other.Site</target>\n</properties>\n")[0].(*PropertiesElement)
		if p.HasTarget("moodle-main") {
			t.Error("a target with spaces matched")
		}
		if !p.HasTarget("other.site") || p.HasTarget("otherXsite") {
			t.Error("the target must be matched literally (no regexp metacharacters), case-insensitively")
		}
	})
	t.Run("userid with a second attribute corrupts auth", func(t *testing.T) {
		p := scanAll(t, `<person><sourcedid><id>P1</id></sourcedid><userid authenticationtype="ldap" password="x">abc</userid>`+"\n</person>\n")[0].(*PersonElement)
		if p.Auth != `ldap" password="x` || p.Username != "abc" {
			t.Errorf("person = %+v", p)
		}
	})
}

func TestPHPIntval(t *testing.T) {
	for s, want := range map[string]int{"1": 1, " 1": 1, "01": 1, "1abc": 1, "abc": 0, "": 0, "-1": -1, "0": 0, "2": 2} {
		if got := phpIntval(s); got != want {
			t.Errorf("phpIntval(%q) = %d, want %d", s, got, want)
		}
	}
}
