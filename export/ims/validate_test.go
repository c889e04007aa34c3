package ims

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func golden(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestValidateAcceptsGoodFiles(t *testing.T) {
	for _, name := range []string{"golden.xml", "formats-example.xml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		sum, err := ValidateBytes(b)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if sum.Memberships == 0 || sum.Members == 0 || len(sum.Targets) != 1 {
			t.Errorf("%s: summary %+v", name, sum)
		}
	}
}

// Each case breaks one rule of docs/formats.md §1.2/§1.7 in an otherwise valid
// file; Validate must name the rule and the line.
func TestValidateFindsEachBrokenRule(t *testing.T) {
	cases := []struct {
		name     string
		old, new string // replace the first old with new in golden.xml
		line     int
		want     string
	}{
		{"byte-order mark", `<?xml`, "\xef\xbb\xbf<?xml", 1, "byte-order mark"},
		{"other declaration", `encoding="UTF-8"?>`, `encoding="UTF-8" standalone="yes"?>`, 1, "first line"},
		{"comment", "<person recstatus=\"1\">\n", "<!-- a comment -->\n<person recstatus=\"1\">\n", 9, "comment"},
		{"cdata", "<given>Mia</given>", "<given><![CDATA[Mia]]></given>", 12, "CDATA"},
		{"roletype second", `<role roletype="01" recstatus="3">`, `<role recstatus="3" roletype="01">`, 34, "roletype"},
		{"roletype out of range", `<role roletype="02">`, `<role roletype="09">`, 41, "roletype"},
		{"single quotes", `<role roletype="02">`, `<role roletype='02'>`, 41, "roletype"},
		{"missing status", "      <status>0</status>\n", "", 34, "without <status>"},
		{"status 2", "<status>0</status>", "<status>2</status>", 35, "not 0 or 1"},
		{"status 1 with recstatus 3", "<status>0</status>", "<status>1</status>", 34, "contradicts"},
		{"short date", `<begin restrict="1">2025-09-22</begin>`, `<begin restrict="1">2025-9-22</begin>`, 27, "YYYY-MM-DD"},
		{"date with time", `<begin restrict="1">2025-09-22</begin>`, `<begin restrict="1">2025-09-22T00:00:00</begin>`, 27, "YYYY-MM-DD"},
		{"impossible date", `<end restrict="1">2026-01-17</end>`, `<end restrict="1">2026-02-30</end>`, 27, "does not exist"},
		{"no restrict", `<begin restrict="1">2025-09-22</begin>`, `<begin>2025-09-22</begin>`, 27, "restrict"},
		{"end not after begin", `<end restrict="1">2026-01-17</end>`, `<end restrict="1">2025-09-22</end>`, 27, "not after"},
		{"member attribute", "  <member>\n    <sourcedid><source>SITS</source><id>20987654", "  <member idtype=\"1\">\n    <sourcedid><source>SITS</source><id>20987654", 31, "no attributes"},
		{"closer shares a line", "  </member>\n</membership>\n<membership>", "  </member>\n</membership><membership>", 53, "alone on its line"},
		{"closer with a space", "</person>\n<membership>", "</person >\n<membership>", 19, "without spaces"},
		{"person deleted", `<person recstatus="2">`, `<person recstatus="3">`, 15, "never deletes"},
		{"person before properties closed", "</properties>\n<person recstatus=\"1\">\n", "<person recstatus=\"1\">\n", 8, "before </properties>"},
		{"no target", "  <target>moodle-main</target>\n", "", 3, "no <target>"},
		{"target with spaces", "<target>moodle-main</target>", "<target> moodle-main</target>", 5, "surrounding spaces"},
		{"character reference", "<given>Mia</given>", "<given>Mi&#225;</given>", 12, "literally"},
		{"undefined entity", "<given>Mia</given>", "<given>Mi&aacute;</given>", 12, "well-formed"},
		{"second membership of a course", "<id>ECON0001-2025-T2</id>", "<id>GEOG0012-2025-T1</id>", 54, "second <membership>"},
		{"same user and role twice", "<id>S004211</id></sourcedid>\n    <idtype>1</idtype>\n    <role roletype=\"08\">", "<id>S004211</id></sourcedid>\n    <idtype>1</idtype>\n    <role roletype=\"02\">", 45, "twice"},
		{"two roles in a member", "      <status>1</status>\n    </role>\n  </member>\n  <member>\n    <sourcedid><source>SITS</source><id>S004211</id></sourcedid>\n    <idtype>1</idtype>\n    <role roletype=\"08\">",
			"      <status>1</status>\n    </role>\n    <role roletype=\"08\">", 38, "2 <role> elements"},
		{"membership without course first", "<membership>\n  <sourcedid><source>SITS</source><id>ECON0001-2025-T2</id></sourcedid>\n", "<membership>\n", 54, "does not start"},
		{"user id with a space", "<userid authenticationtype=\"saml2\">", "<userid authenticationtype=\"saml2\" x=\"1\">", 11, "only attribute"},
		{"mismatched end tag", "<idtype>1</idtype>", "<idtype>1</idtypo>", 24, "closed by"},
		{"namespace prefix", "<idtype>1</idtype>", "<x:idtype>1</x:idtype>", 24, "namespace prefix"},
		{"not closed", "</membership>\n</enterprise>\n", "</membership>\n", 65, "before </enterprise>"},
		{"unknown element", "<membership>\n  <sourcedid><source>SITS</source><id>ECON", "<extra/>\n<membership>\n  <sourcedid><source>SITS</source><id>ECON", 54, "unexpected element"},
	}
	base := golden(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(base, c.old) {
				t.Fatalf("golden.xml has no %q", c.old)
			}
			_, err := Validate(strings.NewReader(strings.Replace(base, c.old, c.new, 1)))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want a ValidationError, got %v", err)
			}
			for _, p := range ve.Problems {
				if strings.Contains(p.Msg, c.want) && (c.line == 0 || p.Line == c.line) {
					return
				}
			}
			t.Errorf("no problem %q at line %d in: %v", c.want, c.line, err)
		})
	}
}

func TestValidateWholeDocumentOnOneLine(t *testing.T) {
	one := strings.Replace(strings.ReplaceAll(golden(t), "\n", ""), "?>", "?>\n", 1)
	_, err := ValidateBytes([]byte(one))
	if err == nil || !strings.Contains(err.Error(), "alone on its line") {
		t.Fatalf("one-line document: %v", err)
	}
}

func TestValidateHugeLine(t *testing.T) {
	huge := golden(t) + strings.Repeat("x", maxLine+10) + "\n"
	_, err := ValidateBytes([]byte(huge))
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "longer than") || ve.Problems[0].Line != 66 {
		t.Fatalf("huge line: %v", err)
	}
}

func TestValidateEmptyAndTruncated(t *testing.T) {
	if _, err := ValidateBytes(nil); err == nil {
		t.Error("an empty file validated")
	}
	g := golden(t)
	for _, n := range []int{len(g) / 3, len(g) / 2, len(g) - 5} {
		if _, err := ValidateBytes([]byte(g[:n])); err == nil {
			t.Errorf("a file cut at byte %d validated", n)
		}
	}
}

type failingReader struct {
	r   io.Reader
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func TestValidateReadError(t *testing.T) {
	boom := errors.New("disk gone")
	_, err := Validate(&failingReader{r: strings.NewReader(golden(t)), n: 500, err: boom})
	if !errors.Is(err, boom) {
		t.Fatalf("want the read error, got %v", err)
	}
}

func TestValidationErrorIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(xmlDecl + "\n<enterprise>\n<properties>\n<target>t</target>\n</properties>\n<membership>\n<sourcedid><id>C</id></sourcedid>\n")
	for i := 0; i < 500; i++ {
		b.WriteString("<member><sourcedid><id>u</id></sourcedid><role roletype='01'><status>1</status></role></member>\n")
	}
	b.WriteString("</membership>\n</enterprise>\n")
	_, err := ValidateBytes([]byte(b.String()))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatal(err)
	}
	if len(ve.Problems) != maxProblems || ve.Omitted == 0 {
		t.Errorf("kept %d problems, omitted %d", len(ve.Problems), ve.Omitted)
	}
	if len(err.Error()) > 3000 {
		t.Errorf("error message is %d bytes long", len(err.Error()))
	}
}
