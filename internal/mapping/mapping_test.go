package mapping_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/mapping"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/settings"
)

var know = mapping.Knowledge{Sites: []string{"main", "archive"}, Roles: []string{"editingteacher", "student", "teacher"}}

func problems(ps []mapping.Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.String() + "\n")
	}
	return b.String()
}

func TestCSVProblemsAreAllReportedWithLineAndField(t *testing.T) {
	csv := `instance,course_idnumber,sis_kind,sis_key,academic_year,section,roles,group_sync
main,CLAS0001-A4U-T1-2025,module_occurrence,CLAS0001-A4U-T1-2025,2025,,student,yes
elsewhere,C2,module,K,2025/7,,dean,maybe
main,,programme,,25/26,,,
main,C4,programme,UBACLASCLA01,,02,student,no
main,CLAS0001-A4U-T1-2025,module_occurrence,CLAS0001-A4U-T1-2025,2025/26,,student;teacher,no
`
	rows, ps := mapping.ParseCSV(strings.NewReader(csv), mapping.Defaults{Origin: "import:x.csv"}, know)
	ps = append(ps, mapping.Resolve(context.Background(), nil, rows)...)
	got := problems(ps)
	for _, want := range []string{
		`line 3: instance: "elsewhere" is not a configured Moodle site`,
		`line 3: sis_kind: "module" is not one of`,
		`line 3: academic_year: "2025/7" is not an academic year`,
		`line 3: roles: "dean" is not a role of exports.ims_roles`,
		`line 3: group_sync: "maybe" is not true or false`,
		"line 4: course_idnumber: required",
		"line 4: sis_key: required",
		"line 5: section: applies only to sis_kind section",
		"line 6: the same mapping as line 2",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "line 2:") {
		t.Errorf("a valid line was reported:\n%s", got)
	}
	if rows[0].AcademicYear != "2025" || !rows[0].GroupSync || rows[0].ActiveSet || !reflect.DeepEqual(rows[4].Roles, []string{"student", "teacher"}) {
		t.Errorf("rows parsed as %+v / %+v", rows[0].Mapping, rows[4].Mapping)
	}

	_, ps = mapping.ParseCSV(strings.NewReader("course,sis_kind\nx,y\n"), mapping.Defaults{}, know)
	got = problems(ps)
	for _, want := range []string{"line 1: course: unknown column", "line 1: course_idnumber: required column missing", "line 1: instance: no instance column"} {
		if !strings.Contains(got, want) {
			t.Errorf("header problems lack %q:\n%s", want, got)
		}
	}
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func importFile(t *testing.T, pool *pgxpool.Pool, data string, d mapping.Defaults) (mapping.ImportResult, error) {
	t.Helper()
	ctx := context.Background()
	rows, ps := mapping.ParseFile([]byte(data), d, know)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	ps = append(ps, mapping.Resolve(ctx, tx, rows)...)
	if len(ps) > 0 {
		return mapping.ImportResult{}, &mapping.FileError{File: "test", Problems: ps}
	}
	res, err := mapping.Import(ctx, tx, rows, "alice@host")
	if err != nil {
		return res, err
	}
	return res, tx.Commit(ctx)
}

func TestImportIsAllOrNothingAndIdempotent(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	file := `course_idnumber,sis_kind,sis_key,academic_year,roles
CLAS0001-A4U-T1-2025,module_occurrence,CLAS0001-A4U-T1-2025,2025,student
CLAS0001-A4U-T1-2025,module_occurrence,CLAS0001-A4U-T1-2025,2024,student
PROG-UBACLAS,programme,UBACLASCLA01,2025,student editingteacher
`
	res, err := importFile(t, db.Pool, file, mapping.Defaults{Instance: "main", Origin: "import:m.csv"})
	if err != nil || res != (mapping.ImportResult{Created: 3}) {
		t.Fatalf("first import: %+v %v", res, err)
	}
	if n := count(t, db.Pool, `SELECT count(*) FROM ctl.course_mapping_event WHERE action = 'create' AND by = 'alice@host'`); n != 3 {
		t.Errorf("%d create events", n)
	}
	res, err = importFile(t, db.Pool, file, mapping.Defaults{Instance: "main", Origin: "import:m.csv"})
	if err != nil || res != (mapping.ImportResult{Unchanged: 3}) {
		t.Errorf("re-import: %+v %v", res, err)
	}
	if n := count(t, db.Pool, `SELECT count(*) FROM ctl.course_mapping_event`); n != 3 {
		t.Errorf("a re-import recorded events: %d", n)
	}

	// A file with one bad line imports nothing, not even its good lines.
	bad := file + "NEW-COURSE,programme,UBX,2025,student\nBROKEN,programme,,2025,student\n"
	_, err = importFile(t, db.Pool, bad, mapping.Defaults{Instance: "main", Origin: "import:bad.csv"})
	var fe *mapping.FileError
	if !errors.As(err, &fe) || len(fe.Problems) != 1 || fe.Problems[0].Where != "line 6" || fe.ExitCode() != 2 {
		t.Fatalf("bad file: %v", err)
	}
	if n := count(t, db.Pool, `SELECT count(*) FROM ctl.course_mapping WHERE course_idnumber = 'NEW-COURSE'`); n != 0 {
		t.Error("a file with a problem was partly imported")
	}

	// Deactivated mappings stay deactivated on a re-import that does not
	// say otherwise; a changed role is an update with before and after.
	if _, err := mapping.SetActive(ctx, db.Pool, mapping.Filter{}, false, "bob@host", "term started"); err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(file, "student editingteacher", "student teacher", 1)
	res, err = importFile(t, db.Pool, changed, mapping.Defaults{Instance: "main", Origin: "import:m.csv"})
	if err != nil || res != (mapping.ImportResult{Updated: 1, Unchanged: 2}) {
		t.Fatalf("changed import: %+v %v", res, err)
	}
	if n := count(t, db.Pool, `SELECT count(*) FROM ctl.course_mapping WHERE active`); n != 0 {
		t.Errorf("a re-import reactivated %d mappings", n)
	}
	evs, err := mapping.Events(ctx, db.Pool, "main", "PROG-UBACLAS", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || evs[0].Action != "update" || evs[1].Action != "deactivate" || evs[2].Action != "create" {
		t.Fatalf("events %+v", evs)
	}
	before := evs[0].Detail["before"].(map[string]any)["roles"]
	after := evs[0].Detail["after"].(map[string]any)["roles"]
	if !reflect.DeepEqual(before, []any{"editingteacher", "student"}) || !reflect.DeepEqual(after, []any{"student", "teacher"}) {
		t.Errorf("update detail %v -> %v", before, after)
	}
	if evs[1].By != "bob@host" || evs[1].Detail["reason"] != "term started" {
		t.Errorf("deactivate event %+v", evs[1])
	}
	withActive := "course_idnumber,sis_kind,sis_key,academic_year,active\nPROG-UBACLAS,programme,UBACLASCLA01,2025,true\n"
	if res, err := importFile(t, db.Pool, withActive, mapping.Defaults{Instance: "main"}); err != nil || res.Updated != 1 {
		t.Errorf("explicit active: %+v %v", res, err)
	}
}

func TestSeed002JSONShape(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	// The seed's file, as a PowerCampus site writes it.
	seed := `{
  "COUN6552COUN855202Winter2021": {"courses": ["COUN6552", "COUN8552"], "section": "02", "id": 4766},
  "BSC5102Winter2021": {"courses": ["BSC5102"], "id": 4748},
  "GONE": {"courses": ["X1"], "id": 1},
  "NOIDNUMBER": {"courses": ["X2"]},
  "EXPLICIT": {"courses": ["X3"], "idnumber": "EXPLICIT-ID", "kind": "programme", "year": "2025/26", "group_sync": true}
}`
	_, err := importFile(t, db.Pool, seed, mapping.Defaults{Instance: "main", Origin: "import:wc.json"})
	if err == nil || !strings.Contains(err.Error(), "the warehouse has no Moodle courses yet") {
		t.Fatalf("without Moodle courses: %v", err)
	}
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE stg.moodle_course AS SELECT * FROM (VALUES
		('main', 4766::bigint, 'COUN6552COUN855202Winter2021', 'COUN-2021W-02'),
		('main', 4748, 'BSC5102Winter2021', 'BSC5102-2021W'),
		('main', 9, 'NOIDNUMBER', NULL)) AS c(instance, course_id, shortname, idnumber)`); err != nil {
		t.Fatal(err)
	}
	_, err = importFile(t, db.Pool, seed, mapping.Defaults{Instance: "main", Origin: "import:wc.json"})
	var fe *mapping.FileError
	if !errors.As(err, &fe) {
		t.Fatalf("%v", err)
	}
	got := problems(fe.Problems)
	for _, want := range []string{`entry "GONE" course 1: shortname: no course "GONE" on site main`,
		`entry "NOIDNUMBER" course 1: idnumber: course "NOIDNUMBER" (id 9) has no idnumber`} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	if len(fe.Problems) != 2 {
		t.Errorf("problems:\n%s", got)
	}
	fixed := strings.Replace(strings.Replace(seed, `  "GONE": {"courses": ["X1"], "id": 1},`+"\n", "", 1),
		`  "NOIDNUMBER": {"courses": ["X2"]},`+"\n", "", 1)
	res, err := importFile(t, db.Pool, fixed, mapping.Defaults{Instance: "main", Origin: "import:wc.json"})
	if err != nil || res.Created != 4 {
		t.Fatalf("import: %+v %v", res, err)
	}
	ms, err := mapping.List(ctx, db.Pool, mapping.Filter{Instance: "main"})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, m := range ms {
		keys = append(keys, m.Key().String()+" origin="+m.Origin)
	}
	want := []string{
		"main BSC5102-2021W <- section BSC5102 origin=import:wc.json",
		"main COUN-2021W-02 <- section COUN6552 section=02 origin=import:wc.json",
		"main COUN-2021W-02 <- section COUN8552 section=02 origin=import:wc.json",
		"main EXPLICIT-ID <- programme X3 year=2025 origin=import:wc.json",
	}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("mappings\n%s\nwant\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
	}
	for _, bad := range []string{`{"X": {"courses": [], "id": 1}}`, `{"X": {"courses": ["A"], "sektion": "1"}}`, `{"X": [1]}`, `{"X": `} {
		if _, err := importFile(t, db.Pool, bad, mapping.Defaults{Instance: "main"}); !errors.As(err, &fe) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestSetActiveByFilter(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	file := "instance,course_idnumber,sis_kind,sis_key\nmain,A,programme,P1\nmain,A,programme,P2\nmain,B,programme,P1\narchive,A,programme,P1\n"
	if _, err := importFile(t, db.Pool, file, mapping.Defaults{}); err != nil {
		t.Fatal(err)
	}
	n, err := mapping.SetActive(ctx, db.Pool, mapping.Filter{Instance: "main", Course: "A"}, false, "ops", "")
	if err != nil || n != 2 {
		t.Fatalf("deactivate course A on main: %d %v", n, err)
	}
	if n, _ := mapping.SetActive(ctx, db.Pool, mapping.Filter{Instance: "main", Course: "A"}, false, "ops", ""); n != 0 {
		t.Errorf("deactivating again changed %d", n)
	}
	off := false
	ms, _ := mapping.List(ctx, db.Pool, mapping.Filter{Active: &off})
	if len(ms) != 2 || ms[0].CourseIDNumber != "A" || ms[0].UpdatedBy != "ops" {
		t.Errorf("inactive: %+v", ms)
	}
	if n, err := mapping.SetActive(ctx, db.Pool, mapping.Filter{}, true, "ops", "back"); err != nil || n != 2 {
		t.Errorf("activate all: %d %v", n, err)
	}
	if n := count(t, db.Pool, `SELECT count(*) FROM ctl.course_mapping_event WHERE action = 'activate' AND detail->>'reason' = 'back'`); n != 2 {
		t.Errorf("%d activate events", n)
	}
}

func TestDeriveFromIdnumbers(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	cfg, err := config.Parse([]byte(`environment: test
moodle:
  - {name: main, url: https://m.example.ac.uk, token: t, environment: test}
mappings:
  rules:
    - name: occ
      pattern: '^(?P<mod>[A-Z]{4}\d{4})-(?P<occ>[A-Z0-9]+)-(?P<psl>[A-Z0-9_]+)-(?P<year>\d{2,4}(_\d{1,2})?)$'
      sis_kind: module_occurrence
      academic_year: "{year:_=/}"
    - name: occ-again
      pattern: '^(?P<mod>[A-Z]{4}\d{4})-.*$'
      sis_kind: module_occurrence
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE stg.moodle_course AS SELECT * FROM (VALUES
		('main', 'CLAS0001-A4U-T1-2025', false),
		('main', 'LAWS0024-A6U-T1_2-2023_4', false),
		('main', 'LAWS0025-A6U-T1-2023_7', false),
		('main', 'LAWS0026-XYZ', false),
		('main', 'free text course', false),
		('main', 'SITE0000-A-B-2025', true)) AS c(instance, idnumber, is_site)`); err != nil {
		t.Fatal(err)
	}
	// A manual mapping of the same key exists and wins.
	if _, err := importFile(t, db.Pool, "instance,course_idnumber,sis_kind,sis_key,academic_year,roles\nmain,CLAS0001-A4U-T1-2025,module_occurrence,CLAS0001-A4U-T1-2025,2025,editingteacher\n", mapping.Defaults{Origin: "manual"}); err != nil {
		t.Fatal(err)
	}
	derive := func(rules []config.MappingRule) mapping.DeriveResult {
		tx, err := db.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		res, err := mapping.Derive(ctx, tx, rules, "mim transform")
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := derive(cfg.Mappings.Rules)
	if res.Courses != 5 || res.Matched != 4 || res.Created != 2 || res.Manual != 1 || res.InvalidCount != 1 || !strings.Contains(res.Invalid[0], `academic_year "2023/7"`) {
		t.Errorf("first derive: %+v", res)
	}
	ms, _ := mapping.List(ctx, db.Pool, mapping.Filter{Origin: "rule:"})
	var got []string
	for _, m := range ms {
		got = append(got, m.Key().String()+" "+m.Origin)
	}
	want := []string{
		"main LAWS0024-A6U-T1_2-2023_4 <- module_occurrence LAWS0024-A6U-T1_2-2023_4 year=2023 rule:occ",
		"main LAWS0026-XYZ <- module_occurrence LAWS0026-XYZ rule:occ-again",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("derived\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if ms, _ := mapping.List(ctx, db.Pool, mapping.Filter{Course: "CLAS0001-A4U-T1-2025"}); len(ms) != 1 || ms[0].Origin != "manual" {
		t.Errorf("manual mapping: %+v", ms)
	}

	// Deactivated derived mappings stay so; a changed rule updates its own.
	if _, err := mapping.SetActive(ctx, db.Pool, mapping.Filter{}, false, "ops", "rollover"); err != nil {
		t.Fatal(err)
	}
	res = derive(cfg.Mappings.Rules)
	if res.Created != 0 || res.Updated != 0 || res.Existing != 2 || res.Manual != 1 {
		t.Errorf("second derive: %+v", res)
	}
	cfg.Mappings.Rules[0].GroupSync = true
	res = derive(cfg.Mappings.Rules)
	if res.Updated != 1 {
		t.Errorf("changed rule: %+v", res)
	}
	if n := count(t, db.Pool, `SELECT count(*) FROM ctl.course_mapping WHERE active`); n != 0 {
		t.Errorf("derive reactivated %d mappings", n)
	}
	if n := count(t, db.Pool, `SELECT count(*) FROM ctl.course_mapping WHERE origin = 'manual' AND group_sync`); n != 0 {
		t.Error("derive changed a manual mapping")
	}
}

func TestStartYearAgreesWithSQL(t *testing.T) {
	db := pgtest.New(t)
	codes := []string{"2025", "2025/6", "2025/26", "2025/7", "2019/20", "2099/00", "25/26", "98/99", "69/70", "25/27", "2025/", "abcd", "", " 2024 ", "2025/100", "1/2"}
	for _, c := range codes {
		var sqlYear *int
		if err := db.Pool.QueryRow(context.Background(), `SELECT ref.ayr_start($1)`, c).Scan(&sqlYear); err != nil {
			t.Fatal(err)
		}
		y, ok := mapping.StartYear(c)
		if (sqlYear != nil) != ok || (ok && *sqlYear != y) {
			t.Errorf("%q: Go %d %v, SQL %v", c, y, ok, sqlYear)
		}
	}
}

func TestRollover(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	if _, err := importFile(t, db.Pool, "instance,course_idnumber,sis_kind,sis_key,academic_year\nmain,A,programme,P1,2025\nmain,B,programme,P1,2025\narchive,A,faculty,F,\n", mapping.Defaults{}); err != nil {
		t.Fatal(err)
	}
	if _, err := settings.Set(ctx, db.Pool, "academic_year", "2025", "ops", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := mapping.PlanRollover(ctx, db.Pool, 2024); err == nil || !strings.Contains(err.Error(), "before the current academic_year 2025") {
		t.Errorf("going back: %v", err)
	}
	p, err := mapping.PlanRollover(ctx, db.Pool, 2026)
	if err != nil {
		t.Fatal(err)
	}
	if p.ToDeactivateTotal != 3 || len(p.ToDeactivate) != 2 || p.SITSYears != nil || p.AcademicYear != 2025 {
		t.Errorf("plan %+v", p)
	}
	if _, known := p.SITSReady(); known {
		t.Error("SITS readiness known without staging")
	}
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, err := mapping.ApplyRollover(ctx, tx, p, "ops@host", "agreed with the service owner", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Deactivated != 3 || len(a.Settings) != 3 || a.Settings[0] != (mapping.SettingChange{Key: "academic_year", Old: "2025", New: "2026"}) ||
		a.Settings[2] != (mapping.SettingChange{Key: "staff_edits_frozen", Old: "false", New: "true"}) {
		t.Errorf("applied %+v", a)
	}
	for k, want := range map[string]string{"academic_year": "2026", "min_mod_occ_year": "2026", "threshold_override": "false", "staff_edits_frozen": "true"} {
		if v, _ := settings.Text(ctx, db.Pool, k); v != want {
			t.Errorf("%s = %q", k, v)
		}
	}
	if n := count(t, db.Pool, `SELECT count(*) FROM ctl.settings_history WHERE reason = 'rollover to 2026: agreed with the service owner'`); n != 3 {
		t.Errorf("%d settings history rows", n)
	}
	if n := count(t, db.Pool, `SELECT count(*) FROM ctl.course_mapping_event WHERE action = 'deactivate' AND by = 'ops@host'`); n != 3 {
		t.Errorf("%d deactivate events", n)
	}
}
