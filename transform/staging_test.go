package transform_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/transform"
)

func sample(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "moodle", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

type obj = map[string]any

// loadMoodleSamples writes the recorded Moodle responses into the raw store the
// way docs/contracts.md §1 says the Moodle extractor lands them.
func loadMoodleSamples(t *testing.T, r raw, instance string) {
	var site obj
	sample(t, "core_webservice_get_site_info", &site)
	r.put("moodle", instance, "site_info", "site", "", site)

	var cats []obj
	sample(t, "core_course_get_categories", &cats)
	for _, c := range cats {
		r.put("moodle", instance, "categories", fmt.Sprint(c["id"]), "", c)
	}
	var courses []obj
	sample(t, "core_course_get_courses", &courses)
	for _, c := range courses {
		r.put("moodle", instance, "courses", fmt.Sprint(c["id"]), "", c)
	}
	var users struct{ Users []obj }
	sample(t, "core_user_get_users", &users)
	fields := map[string]obj{}
	for _, u := range users.Users {
		r.put("moodle", instance, "users", fmt.Sprint(u["id"]), "", u)
		if cfs, ok := u["customfields"].([]any); ok {
			for _, cf := range cfs {
				f := cf.(obj)
				fields[f["shortname"].(string)] = obj{"shortname": f["shortname"], "name": f["name"], "type": f["type"]}
			}
		}
	}
	for k, f := range fields {
		r.put("moodle", instance, "profile_fields", k, "", f)
	}
	var enrolled []obj
	sample(t, "core_enrol_get_enrolled_users", &enrolled)
	roles := map[string]obj{}
	for _, u := range enrolled {
		u["mim_courseid"] = 14
		u["mim_suspended"] = false
		r.put("moodle", instance, "enrolments", fmt.Sprintf("14:%v", u["id"]), "14", u)
		for _, ro := range u["roles"].([]any) {
			ro := ro.(obj)
			roles[fmt.Sprint(ro["roleid"])] = obj{"roleid": ro["roleid"], "shortname": ro["shortname"], "name": ro["name"]}
		}
	}
	for k, ro := range roles {
		r.put("moodle", instance, "roles", k, "", ro)
	}
	var groups []obj
	sample(t, "core_group_get_course_groups", &groups)
	for _, g := range groups {
		r.put("moodle", instance, "groups", fmt.Sprint(g["id"]), "14", g)
	}
	var groupings, withGroups []obj
	sample(t, "core_group_get_course_groupings", &groupings)
	sample(t, "core_group_get_groupings", &withGroups)
	members := map[string][]any{}
	for _, g := range withGroups {
		for _, gg := range g["groups"].([]any) {
			members[fmt.Sprint(g["id"])] = append(members[fmt.Sprint(g["id"])], gg.(obj)["id"])
		}
	}
	for _, g := range groupings {
		ids := members[fmt.Sprint(g["id"])]
		if ids == nil {
			ids = []any{}
		}
		g["mim_groupids"] = ids
		r.put("moodle", instance, "groupings", fmt.Sprint(g["id"]), "14", g)
	}
	var report struct{ Usergrades []obj }
	sample(t, "gradereport_user_get_grade_items", &report)
	for _, ug := range report.Usergrades {
		for _, it := range ug["gradeitems"].([]any) {
			it := it.(obj)
			item := obj{}
			grade := obj{}
			for k, v := range it {
				if strings.HasPrefix(k, "grade") || k == "feedback" || k == "feedbackformat" || k == "percentageformatted" || k == "status" {
					grade[k] = v
				} else {
					item[k] = v
				}
			}
			item["grademin"], item["grademax"] = it["grademin"], it["grademax"]
			r.put("moodle", instance, "grade_items", fmt.Sprintf("14:%v", it["id"]), "14", item)
			r.put("moodle", instance, "grades", fmt.Sprintf("14:%v:%v", it["id"], ug["userid"]), "14", grade)
		}
	}
	// Completion as core_enrol_get_users_courses returns a course entry.
	r.put("moodle", instance, "completion", "107:14", "107", obj{"id": 14, "shortname": "MOD1234-A7U-T1-2025", "completed": true, "progress": 87.5, "lastaccess": 1746057600})
	// Enrolment methods as core_enrol_get_course_enrolment_methods returns them.
	var methods []obj
	sample(t, "core_enrol_get_course_enrolment_methods", &methods)
	for _, m := range methods {
		m["mim_courseid"], m["mim_source"] = 14, "web_service"
		r.put("moodle", instance, "enrol_methods", fmt.Sprintf("14:%v", m["id"]), "14", m)
	}
}

// loadSITSAndCMIS writes example rows of the SITS views and CMIS tables
// (docs/contracts.md §1) as the SITS and CMIS extractors land them.
func loadSITSAndCMIS(r raw) {
	const grklt, chems = "F2A752E6B438C3A1E063021E1C0A7F42", "6513269E0D37C3A1E063021E1C0A7F42"
	r.put("sits", "sits", "faculties", "ART", "", obj{"dpt_fac_code": "ART", "dpt_fac_name": "Faculty of Arts and Humanities"})
	r.put("sits", "sits", "faculties", "MPS", "", obj{"dpt_fac_code": "MPS", "dpt_fac_name": "Faculty of Mathematical and Physical Sciences"})
	r.put("sits", "sits", "department", grklt, "", obj{"dpt_bdo_id": grklt, "dpt_code": "GRKLT", "dpt_name": "Greek and Latin", "dpt_fac_code": "ART"})
	r.put("sits", "sits", "department", "code:NOFAC", "", obj{"dpt_bdo_id": "", "dpt_code": "NOFAC", "dpt_name": "Without a faculty", "dpt_fac_code": nil})
	r.put("sits", "sits", "programme", "UBACLASCLA01|"+grklt, "", obj{"prog_code": "UBACLASCLA01", "prog_name": "BA Classics", "dpt_bdo_id": grklt, "ioe_sessions": "N"})
	r.put("sits", "sits", "route", "UBACLASGRK01|UBACLASCLA01|"+grklt, "", obj{"route_code": "UBACLASGRK01", "route_name": "Classics with Greek", "prog_code": "UBACLASCLA01", "dpt_bdo_id": grklt, "ioe_sessions": "N"})
	for _, s := range []obj{
		{"student_code": "25001234", "username": "zcqsabc", "upi": "KQWER31", "firstname": "Amara", "surname": "Okafor-Lindqvist", "student_name": "Amara Okafor-Lindqvist", "email": "amara.okafor-lindqvist.25@example.ac.uk", "dpt_bdo_id": grklt, "personal_tutor": "PTUTR07", "enrolment_status": "E", "course_join_status": "O"},
		{"student_code": "25004321", "username": "zcqsxyz", "upi": "MNBVC88", "firstname": "", "surname": "Nguyễn", "student_name": "Nguyễn", "email": "nguyen.25@example.ac.uk", "dpt_bdo_id": chems, "personal_tutor": nil, "enrolment_status": "XE", "course_join_status": "O"},
		{"student_code": "24009876", "username": "ucabqrs", "upi": "ZXCVB12", "firstname": "Tomás", "surname": "Ó Briain", "student_name": "Tomás Ó Briain", "email": "tomas.obriain.24@example.ac.uk", "dpt_bdo_id": chems, "personal_tutor": "PTUTR11", "enrolment_status": "L", "course_join_status": "C"},
	} {
		r.put("sits", "sits", "student", s["student_code"].(string), "", s)
	}
	r.put("sits", "sits", "student", "20000001", "", obj{"student_code": "20000001", "enrolment_status": "E"})
	r.delete("sits", "sits", "student", "20000001")
	r.put("sits", "sits", "assignment", "25001234|UBACLASGRK01|UBACLASCLA01|"+grklt+"|ART|U|1A", "", obj{"student_code": "25001234", "route_code": "UBACLASGRK01", "prog_code": "UBACLASCLA01", "dpt_bdo_id": grklt, "dpt_fac_code": "ART", "post_undergrad": "U", "course_year": "1A"})
	r.put("sits", "sits", "module_inst", "0C5CA6A3A450C3A1E063021E1C0A7F42", "", obj{"mod_inst_bdo_id": "0C5CA6A3A450C3A1E063021E1C0A7F42", "mod_bdo_id": "D23F128B2F33C3A1E063021E1C0A7F42", "mod_code": "CLAS0001", "mod_name": "Classical Civilisation Survey", "mod_dpt_bdo_id": grklt, "mod_year_code": "2025/6", "mod_credits": 15, "mod_leader_upi": "PTUTR07"})
	for _, o := range []obj{
		{"mod_occ_bdo_id": "E8E20ED90475C3A1E063021E1C0A7F42", "mod_inst_bdo_id": "0C5CA6A3A450C3A1E063021E1C0A7F42", "mod_code": "CLAS0001", "mod_occ_psl_code": "T1", "mod_occ_mav": "A4U", "mod_occ_year_code": "2025", "mod_occ_name": "Classical Civilisation Survey"},
		{"mod_occ_bdo_id": "36F681E74EF5C3A1E063021E1C0A7F42", "mod_inst_bdo_id": "0C5CA6A3A450C3A1E063021E1C0A7F42", "mod_code": "CLAS0001", "mod_occ_psl_code": "T1/2", "mod_occ_mav": "C4U", "mod_occ_year_code": "24/25", "mod_occ_name": "Classical Civilisation Survey (Distance)"},
	} {
		r.put("sits", "sits", "module_struc", o["mod_occ_bdo_id"].(string), "", o)
	}
	r.put("sits", "sits", "student_enrl", "25001234|E8E20ED90475C3A1E063021E1C0A7F42|"+grklt, "", obj{"student_code": "25001234", "mod_occ_bdo_id": "E8E20ED90475C3A1E063021E1C0A7F42", "mod_dpt_bdo_id": grklt, "reg_status": "CON", "smo_sms": "SMO", "spr_code": "25001234/1"})
	r.put("cmis", "cmis", "module_group", "6B0D6F03675AC3A1E063021E1C0A7F42", "", obj{"group_bdo_id": "6B0D6F03675AC3A1E063021E1C0A7F42", "mod_occ_bdo_id": "E8E20ED90475C3A1E063021E1C0A7F42", "group_id": "CLAS0001-1", "group_code": "SEM1", "group_name": "Seminar 1", "mod_code": "CLAS0001", "inst_code": "A4U-T1", "setid": "LIVE-25-26", "group_num": 1, "capacity": 16})
	r.put("cmis", "cmis", "group_member", "6B0D6F03675AC3A1E063021E1C0A7F42|025001234", "", obj{"group_bdo_id": "6B0D6F03675AC3A1E063021E1C0A7F42", "student_code": "025001234", "mod_occ_bdo_id": "E8E20ED90475C3A1E063021E1C0A7F42", "setid": "LIVE-25-26"})
	r.put("cmis", "cmis", "group_member", "6B0D6F03675AC3A1E063021E1C0A7F42|X123", "", obj{"group_bdo_id": "6B0D6F03675AC3A1E063021E1C0A7F42", "student_code": "X123", "mod_occ_bdo_id": "E8E20ED90475C3A1E063021E1C0A7F42", "setid": "LIVE-25-26"})
	r.put("cmis", "cmis", "group_tutor", "6B0D6F03675AC3A1E063021E1C0A7F42|PTUTR07", "", obj{"group_bdo_id": "6B0D6F03675AC3A1E063021E1C0A7F42", "staff_upi": "PTUTR07", "lecturer_id": "L00412"})
}

// one returns the single row of a query, every column as text ('NULL' for NULL).
func one(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out []string
	n := 0
	for rows.Next() {
		n++
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = out[:0]
		for _, v := range vals {
			if v == nil {
				out = append(out, "NULL")
			} else {
				out = append(out, fmt.Sprint(v))
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if n != 1 {
		t.Fatalf("%s: %d rows, want 1", sql, n)
	}
	return out
}

func TestStagingTypesEveryRawEntity(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	r := raw{t, db.Pool}
	loadMoodleSamples(t, r, "main")
	loadSITSAndCMIS(r)
	p, err := transform.LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	res, err := transform.Run(ctx, db.Pool, p, opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Skipped) != 0 {
		t.Errorf("skipped checks: %v", res.Skipped)
	}
	counts := map[string]int64{} // staging only: the marts have their own tests (internal/e2e)
	for _, m := range res.Models {
		if strings.HasPrefix(m.Model, "stg.") {
			counts[m.Model] = m.Rows
		}
	}
	want := map[string]int64{
		"stg.sits_faculties": 2, "stg.sits_department": 2, "stg.sits_programme": 1, "stg.sits_route": 1,
		"stg.sits_student": 3, "stg.sits_assignment": 1, "stg.sits_module_inst": 1, "stg.sits_module_struc": 2,
		"stg.sits_student_enrl": 1, "stg.cmis_module_group": 1, "stg.cmis_group_member": 2, "stg.cmis_group_tutor": 1,
		"stg.moodle_site": 1, "stg.moodle_category": 1, "stg.moodle_course": 2, "stg.moodle_user": 11,
		"stg.moodle_user_field": 10, "stg.moodle_profile_field": 1, "stg.moodle_enrolment": 5,
		"stg.moodle_enrolment_role": 5, "stg.moodle_group_member": 8, "stg.moodle_role": 1, "stg.moodle_group": 4,
		"stg.moodle_grouping": 2, "stg.moodle_grouping_group": 1, "stg.moodle_grade_item": 4, "stg.moodle_grade": 4,
		"stg.moodle_completion": 1, "stg.moodle_enrol_method": 1,
	}
	if !reflect.DeepEqual(counts, want) {
		for k, v := range want {
			if counts[k] != v {
				t.Errorf("%s: %d rows, want %d", k, counts[k], v)
			}
		}
		for k := range counts {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected model %s", k)
			}
		}
	}

	for _, c := range []struct {
		sql  string
		want []string
	}{
		// SITS: empty strings become NULL, names survive, the deleted student is gone.
		{`SELECT firstname, surname, personal_tutor_upi FROM stg.sits_student WHERE student_code = '25004321'`, []string{"NULL", "Nguyễn", "NULL"}},
		{`SELECT count(*) FROM stg.sits_student WHERE student_code = '20000001'`, []string{"0"}},
		{`SELECT department_key, coalesce(dpt_bdo_id, 'NULL'), coalesce(faculty_code, 'NULL') FROM stg.sits_department WHERE dpt_code = 'NOFAC'`, []string{"code:NOFAC", "NULL", "NULL"}},
		{`SELECT course_year, year_of_study FROM stg.sits_assignment`, []string{"1A", "1"}},
		{`SELECT mod_year_code, ayr_start, mod_credits::text FROM stg.sits_module_inst`, []string{"2025/6", "2025", "15"}},
		{`SELECT occ_key, ayr_start FROM stg.sits_module_struc WHERE mav_occur = 'A4U'`, []string{"CLAS0001-A4U-T1-2025", "2025"}},
		{`SELECT occ_key, ayr_start FROM stg.sits_module_struc WHERE mav_occur = 'C4U'`, []string{"CLAS0001-C4U-T1_2-24_25", "2024"}},
		// CMIS: the 9-digit code meets SITS's 8 digits; anything else is kept as sent.
		{`SELECT sits_student_code FROM stg.cmis_group_member WHERE cmis_student_code = '025001234'`, []string{"25001234"}},
		{`SELECT sits_student_code FROM stg.cmis_group_member WHERE cmis_student_code = 'X123'`, []string{"X123"}},
		{`SELECT group_num, capacity FROM stg.cmis_module_group`, []string{"1", "16"}},
		// Moodle, from the recorded responses.
		{`SELECT siteurl, release, array_length(functions, 1) > 30 FROM stg.moodle_site`, []string{"http://127.0.0.1:8085", "4.5 (Build: 20241007)", "true"}},
		{`SELECT idnumber, visible, to_char(start_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), is_site FROM stg.moodle_course WHERE course_id = 14`,
			[]string{"MOD1234-A7U-T1-2025", "true", "2025-03-03", "false"}},
		{`SELECT visible FROM stg.moodle_course WHERE course_id = 26`, []string{"false"}},
		{`SELECT username, idnumber, suspended, auth FROM stg.moodle_user WHERE user_id = 392`, []string{"wiremu.smith18", "E10018", "false", "manual"}},
		{`SELECT value FROM stg.moodle_user_field WHERE user_id = 122 AND shortname = 'studentnumber'`, []string{"23100666"}},
		{`SELECT coalesce(user_idnumber, 'NULL'), suspended FROM stg.moodle_enrolment WHERE user_id = 4`, []string{"NULL", "false"}},
		{`SELECT string_agg(group_id::text, ',' ORDER BY group_id) FROM stg.moodle_group_member WHERE user_id = 107`, []string{"1,3"}},
		{`SELECT role_id, role_shortname FROM stg.moodle_enrolment_role WHERE user_id = 107`, []string{"5", "student"}},
		{`SELECT coalesce(idnumber, 'NULL') FROM stg.moodle_group WHERE group_id = 56`, []string{"NULL"}},
		{`SELECT grouping_id, group_id FROM stg.moodle_grouping_group`, []string{"2", "3"}},
		{`SELECT grade_raw::text, grade_max::text FROM stg.moodle_grade WHERE item_id = 62 AND user_id = 107`, []string{"80.43", "100"}},
		{`SELECT coalesce(grade_raw::text, 'NULL') FROM stg.moodle_grade WHERE item_id = 64`, []string{"NULL"}},
		{`SELECT item_type, coalesce(idnumber, 'NULL') FROM stg.moodle_grade_item WHERE item_id = 61`, []string{"course", "NULL"}},
		{`SELECT completed, progress::text FROM stg.moodle_completion`, []string{"true", "87.5"}},
		{`SELECT course_id::text || ' ' || enrol_id || ' ' || method || ' ' || enabled || ' ' || complete FROM stg.moodle_enrol_method`,
			[]string{"14 39 self true false"}},
	} {
		if got := one(t, db.Pool, c.sql); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s\n got %v\nwant %v", c.sql, got, c.want)
		}
	}
}

func TestStagingCheckNamesTheBadRecord(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	r := raw{t, db.Pool}
	loadMoodleSamples(t, r, "main")
	p, err := transform.LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transform.Run(ctx, db.Pool, p, opts()); err != nil {
		t.Fatal(err)
	}
	// A broken extract sends a user whose id is not a number and an
	// enrolment without mim_suspended: staging keeps the rows, its checks
	// refuse the night and show them.
	r.put("moodle", "main", "users", "x1", "", obj{"id": "x1", "username": "broken.user"})
	r.put("moodle", "main", "enrolments", "14:999", "14", obj{"id": 999, "username": "no.flag", "mim_courseid": 14})
	_, err = transform.Run(ctx, db.Pool, p, opts())
	var ce *transform.CheckError
	if !errors.As(err, &ce) {
		t.Fatalf("%v, want a *CheckError", err)
	}
	msg := err.Error()
	for _, want := range []string{"stg.moodle_user: not_null(instance, user_id, username)", "broken.user",
		"stg.moodle_enrolment: not_null(instance, course_id, user_id, suspended)", "no.flag"} {
		if !strings.Contains(msg, want) {
			t.Errorf("report lacks %q:\n%s", want, msg)
		}
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM stg.moodle_user`).Scan(&n); err != nil || n != 11 {
		t.Errorf("stg.moodle_user has %d rows after the refused night, want yesterday's 11 (%v)", n, err)
	}
}

func TestRefHelpersAreLenient(t *testing.T) {
	db := pgtest.New(t)
	got := one(t, db.Pool, `SELECT
		coalesce(ref.to_int(' 12 ')::text, 'NULL'), coalesce(ref.to_int('1.5')::text, 'NULL'), coalesce(ref.to_int('x')::text, 'NULL'),
		coalesce(ref.to_num('-2.50')::text, 'NULL'), coalesce(ref.to_num('1e3')::text, 'NULL'), coalesce(ref.to_num('')::text, 'NULL'),
		coalesce(ref.to_bool('1')::text, 'NULL'), coalesce(ref.to_bool('N')::text, 'NULL'), coalesce(ref.to_bool('maybe')::text, 'NULL'),
		coalesce(ref.to_time('0')::text, 'NULL'), coalesce(to_char(ref.to_time('1752451200') AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 'NULL'),
		coalesce(ref.to_time('-5')::text, 'NULL'), coalesce(ref.to_date('2025-01-31T10:00:00Z')::text, 'NULL'),
		coalesce(ref.to_date('31/01/2025')::text, 'NULL'), coalesce(ref.to_text('  '), 'NULL'), coalesce(ref.to_text(' a b '), 'NULL')`)
	want := []string{"12", "NULL", "NULL", "-2.50", "1000", "NULL", "true", "false", "NULL", "NULL", "2025-07-14", "NULL",
		"2025-01-31", "NULL", "NULL", "a b"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}
