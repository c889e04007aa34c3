package transform

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func mapFS(files map[string]string) fstest.MapFS {
	fs := fstest.MapFS{}
	for name, body := range files {
		fs[name] = &fstest.MapFile{Data: []byte(body)}
	}
	return fs
}

func loadErr(t *testing.T, files map[string]string) string {
	t.Helper()
	_, err := Load(mapFS(files))
	var pe *ProjectError
	if !errors.As(err, &pe) {
		t.Fatalf("Load: %v, want a *ProjectError", err)
	}
	return err.Error()
}

func TestEmbeddedProjectLoadsAndStagesEveryRawEntity(t *testing.T) {
	p, err := LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	// docs/contracts.md §1: every raw entity has a staging model.
	want := []string{
		"stg.sits_faculties", "stg.sits_department", "stg.sits_programme", "stg.sits_route", "stg.sits_student",
		"stg.sits_assignment", "stg.sits_module_inst", "stg.sits_module_struc", "stg.sits_student_enrl",
		"stg.cmis_module_group", "stg.cmis_group_member", "stg.cmis_group_tutor",
		"stg.moodle_site", "stg.moodle_category", "stg.moodle_course", "stg.moodle_user", "stg.moodle_user_field",
		"stg.moodle_enrolment", "stg.moodle_enrolment_role", "stg.moodle_group_member", "stg.moodle_role",
		"stg.moodle_group", "stg.moodle_grouping", "stg.moodle_grouping_group", "stg.moodle_profile_field",
		"stg.moodle_grade_item", "stg.moodle_grade", "stg.moodle_completion",
	}
	for _, n := range want {
		m := p.Model(n)
		if m == nil {
			t.Errorf("no staging model %s", n)
			continue
		}
		if len(m.Checks) == 0 {
			t.Errorf("%s declares no checks", n)
		}
		if m.Description == "" {
			t.Errorf("%s has no description", n)
		}
		// A model that reads raw keeps to current rows; one that unnests
		// another staging model inherits that.
		if len(m.Depends) == 0 && !strings.Contains(m.SQL, "deleted_run IS NULL") {
			t.Errorf("%s does not keep to current rows (deleted_run IS NULL)", n)
		}
	}
	if len(p.Tests()) == 0 {
		t.Error("no singular tests loaded")
	}
}

func TestUnknownDependencyIsRefusedWithASuggestion(t *testing.T) {
	msg := loadErr(t, map[string]string{
		"staging/a/sits_student.sql": "SELECT 1 AS x",
		"marts/a/dim_person.sql":     "-- depends: stg.sits_students\nSELECT 1 AS x",
	})
	for _, want := range []string{"marts/a/dim_person.sql:1", "unknown dependency stg.sits_students", "did you mean stg.sits_student?"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
}

func TestCycleIsRefusedAndNamed(t *testing.T) {
	msg := loadErr(t, map[string]string{
		"marts/x/a.sql":      "-- depends: mart.c\nSELECT * FROM mart.c",
		"marts/x/b.sql":      "-- depends: mart.a\nSELECT * FROM mart.a",
		"marts/x/c.sql":      "-- depends: mart.b\nSELECT * FROM mart.b",
		"marts/x/d.sql":      "-- depends: mart.a\nSELECT * FROM mart.a",
		"staging/x/base.sql": "SELECT 1 AS x",
	})
	if !strings.Contains(msg, "dependency cycle: mart.a -> mart.c -> mart.b -> mart.a") {
		t.Errorf("cycle not named:\n%s", msg)
	}
	msg = loadErr(t, map[string]string{"marts/x/a.sql": "-- depends: mart.a\nSELECT 1 AS x"})
	if !strings.Contains(msg, "depends on itself") {
		t.Errorf("self-dependency: %s", msg)
	}
}

func TestReadsMustBeDeclaredAndKnown(t *testing.T) {
	msg := loadErr(t, map[string]string{
		"staging/s/one.sql": "SELECT 1 AS x",
		"staging/s/two.sql": "SELECT 2 AS x",
		"marts/m/a.sql": `-- depends: stg.one
SELECT o.x, 'stg.two' AS not_a_read -- stg.two in a comment
FROM stg.one o
JOIN stg.two t ON t.x = o.x   /* stg.three in a block */
JOIN "stg".odd q ON true
JOIN stg.nope n ON true`,
	})
	for _, want := range []string{
		"marts/m/a.sql:4: reads stg.two but does not declare it",
		"marts/m/a.sql:6: reads stg.nope, which is no model",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "stg.three") || strings.Contains(msg, "stg.odd") {
		t.Errorf("comments or quoted schemas were taken for reads:\n%s", msg)
	}
	if strings.Count(msg, "\n  - ") != 2 {
		t.Errorf("want exactly 2 problems:\n%s", msg)
	}
}

func TestLayersReadOnlyEarlierLayers(t *testing.T) {
	msg := loadErr(t, map[string]string{
		"staging/s/one.sql": "-- depends: mart.m\nSELECT * FROM mart.m",
		"marts/x/m.sql":     "SELECT 1 AS x",
	})
	if !strings.Contains(msg, "stg.one (staging) cannot depend on mart.m (marts)") {
		t.Errorf("layer rule: %s", msg)
	}
}

func TestFileShapeProblemsAreAllReported(t *testing.T) {
	msg := loadErr(t, map[string]string{
		"staging/s/two_statements.sql": "SELECT 1 AS x;\nSELECT 2 AS y;\n",
		"staging/s/ddl.sql":            "-- description: not allowed\nCREATE TABLE stg.ddl AS SELECT 1 AS x",
		"staging/s/empty.sql":          "-- only a comment\n",
		"staging/s/Bad-Name.sql":       "SELECT 1 AS x",
		"staging/s/bad_header.sql":     "-- depend: stg.x\n-- materialized: ephemeral\n-- core_user_get_users: prose, not a directive\nSELECT 1 AS x",
		"staging/s/bad_check.sql":      "-- checks: unique(), not_null(a), frobnicate(b)\nSELECT 1 AS a",
		"staging/s/quote.sql":          "SELECT 'unterminated AS x",
		"tests/t.sql":                  "-- depends: stg.missing\nSELECT 1",
	})
	for _, want := range []string{
		"staging/s/two_statements.sql:1: more than one statement",
		"staging/s/ddl.sql:2: the SQL starts with \"create\"",
		"staging/s/empty.sql:2: the file has no SQL",
		"staging/s/Bad-Name.sql: a model's file name must be lower case",
		`staging/s/bad_header.sql:1: unknown header "depend": did you mean "depends"?`,
		`staging/s/bad_header.sql:2: materialized: "ephemeral" is not table or view`,
		"staging/s/bad_check.sql:1: check unique(): name at least one column",
		"unterminated string literal",
		"tests/t.sql:1: unknown dependency stg.missing",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
}

func TestOrderIsDeterministicAndLayered(t *testing.T) {
	files := map[string]string{
		"staging/s/zeta.sql":         "SELECT 1 AS x",
		"staging/s/alpha.sql":        "-- depends: stg.zeta\nSELECT * FROM stg.zeta",
		"staging/s/beta.sql":         "SELECT 1 AS x",
		"intermediate/i/early.sql":   "-- depends: stg.beta\nSELECT * FROM stg.beta",
		"marts/m/aaa.sql":            "-- depends: int.early, stg.alpha\nSELECT * FROM int.early, stg.alpha",
		"marts/m/zzz.sql":            "SELECT 1 AS x",
		"intermediate/i/needs_z.sql": "-- depends: stg.zeta\nSELECT * FROM stg.zeta",
	}
	want := []string{"stg.beta", "stg.zeta", "stg.alpha", "int.early", "int.needs_z", "mart.aaa", "mart.zzz"}
	for i := 0; i < 5; i++ {
		p, err := Load(mapFS(files))
		if err != nil {
			t.Fatal(err)
		}
		if got := ModelNames(p.Models()); !reflect.DeepEqual(got, want) {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

func TestSelect(t *testing.T) {
	p, err := Load(mapFS(map[string]string{
		"staging/s/a.sql":  "SELECT 1 AS x",
		"staging/s/b.sql":  "-- depends: stg.a\nSELECT * FROM stg.a",
		"staging/s/c.sql":  "SELECT 1 AS x",
		"marts/m/ab.sql":   "-- depends: stg.b\nSELECT * FROM stg.b",
		"marts/m/abc.sql":  "-- depends: mart.ab, stg.c\nSELECT * FROM mart.ab, stg.c",
		"marts/m/lone.sql": "SELECT 1 AS x",
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sel  []string
		want []string
	}{
		{nil, []string{"stg.a", "stg.b", "stg.c", "mart.ab", "mart.abc", "mart.lone"}},
		{[]string{"stg.b"}, []string{"stg.b"}},
		{[]string{"stg.b+"}, []string{"stg.b", "mart.ab", "mart.abc"}},
		{[]string{"+mart.ab"}, []string{"stg.a", "stg.b", "mart.ab"}},
		{[]string{"+stg.b+"}, []string{"stg.a", "stg.b", "mart.ab", "mart.abc"}},
		{[]string{"mart.*", "stg.c"}, []string{"stg.c", "mart.ab", "mart.abc", "mart.lone"}},
	} {
		got, err := p.Select(c.sel)
		if err != nil {
			t.Errorf("%v: %v", c.sel, err)
			continue
		}
		if names := ModelNames(got); !reflect.DeepEqual(names, c.want) {
			t.Errorf("select %v = %v, want %v", c.sel, names, c.want)
		}
	}
	_, err = p.Select([]string{"stg.d+"})
	var se *SelectError
	if !errors.As(err, &se) || se.ExitCode() != 2 {
		t.Errorf("unknown selector: %v", err)
	}
}

func TestParseChecks(t *testing.T) {
	cs, err := parseChecks(`unique(a, b), not_null(a), accepted_values(kind, 'it''s', 'x, y'), relationships(sid, stg.sits_student.student_code), row_count_min(10)`)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 5 {
		t.Fatalf("got %d checks", len(cs))
	}
	if !reflect.DeepEqual(cs[0].Columns, []string{"a", "b"}) || cs[0].Text != "unique(a, b)" {
		t.Errorf("unique: %+v", cs[0])
	}
	if !reflect.DeepEqual(cs[2].Values, []string{"it's", "x, y"}) {
		t.Errorf("accepted values: %+v", cs[2].Values)
	}
	if cs[3].RefModel != "stg.sits_student" || cs[3].RefColumn != "student_code" {
		t.Errorf("relationships: %+v", cs[3])
	}
	if cs[4].Min != 10 {
		t.Errorf("row_count_min: %+v", cs[4])
	}
	for _, bad := range []string{"unique(a", "unique(A)", "accepted_values(a, b)", "relationships(a, stg.x)", "row_count_min('1')",
		"row_count_min(-1)", "unique(a) not_null(b)", "unique(a; drop table x)", "", "nope(a)"} {
		if _, err := parseChecks(bad); err == nil {
			t.Errorf("parseChecks(%q) accepted", bad)
		}
	}
	// Every value reaches SQL quoted; a quote cannot end the literal.
	c := cs[2]
	if q := c.sql("stg.t"); !strings.Contains(q, `'it''s'`) || !strings.Contains(q, `"stg"."t"`) {
		t.Errorf("accepted_values SQL: %s", q)
	}
}

func TestScanSQL(t *testing.T) {
	src := "SELECT $$ ; stg.a $$, $tag$ x; $tag$, E'it\\'s ; stg.b', /* a /* nested ; */ stg.c */ \"stg\".d, stg . e, x.stg.f; -- stg.g ;\n"
	toks, msg := scanSQL(src)
	if msg != "" {
		t.Fatal(msg)
	}
	semis := 0
	for _, tk := range toks {
		if tk.kind == tokSemicolon {
			semis++
		}
	}
	if semis != 1 {
		t.Errorf("found %d statement separators, want 1", semis)
	}
	refs := references(toks, map[string]bool{"stg": true})
	if len(refs) != 1 || refs[0].name != "stg.e" {
		t.Errorf("references %+v, want only stg.e", refs)
	}
	for _, bad := range []string{"SELECT 'x", "SELECT /* x", `SELECT "x`, "SELECT $a$ x"} {
		if _, msg := scanSQL(bad); msg == "" {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestIndexName(t *testing.T) {
	if n := indexName("stg.moodle_user", []string{"instance", "idnumber"}); n != "moodle_user__instance_idnumber" {
		t.Errorf("name %s", n)
	}
	long := indexName("mart.a_very_long_model_name_for_testing", []string{"instance", "course_idnumber", "user_idnumber", "roletype"})
	if len(long) > 63 || long == indexName("mart.a_very_long_model_name_for_testing", []string{"instance", "course_idnumber", "user_idnumber", "status"}) {
		t.Errorf("long name %q (%d bytes) not shortened distinctly", long, len(long))
	}
}
