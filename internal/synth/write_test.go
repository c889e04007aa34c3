package synth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/synth"
)

func TestWriteIsRerunnableAndLeavesForeignSchemasAlone(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	in := generate(t, synth.Options{Scale: synth.Small})
	counts, err := in.Write(ctx, db.Pool, "t_", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"t_sismgr.ucl_bdo_v_moodle_student": len(in.Students), "t_sismgr.ucl_bdo_v_moodle_student_enrl": len(in.Registrations),
		"t_sismgr.ucl_bdo_v_moodle_module_struc": len(in.Occurrences), "t_moodlemgr.cmis_moodle_v_group_member": len(in.GroupMembers),
	}
	for _, c := range counts {
		if w, ok := want[c.Table]; ok && int64(w) != c.Rows {
			t.Errorf("%s: %d rows, want %d", c.Table, c.Rows, w)
		}
		var n int64
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM `+c.Table).Scan(&n); err != nil || n != c.Rows {
			t.Errorf("%s holds %d rows (%v), Write said %d", c.Table, n, err, c.Rows)
		}
	}
	if len(counts) != 12 {
		t.Errorf("%d tables", len(counts))
	}
	// Again, with another seed: replaced, not appended to.
	other := generate(t, synth.Options{Scale: synth.Small, Seed: 2})
	if _, err := other.Write(ctx, db.Pool, "t_", nil); err != nil {
		t.Fatalf("second write: %v", err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM t_sismgr.ucl_bdo_v_moodle_student`).Scan(&n); err != nil || n != len(other.Students) {
		t.Errorf("after rewriting: %d students (%v)", n, err)
	}
	// A schema synth did not make is never dropped.
	if _, err := db.Pool.Exec(ctx, `CREATE SCHEMA x_moodlemgr; CREATE TABLE x_moodlemgr.precious (i int)`); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Write(ctx, db.Pool, "x_", nil); err == nil || !strings.Contains(err.Error(), "x_moodlemgr exists and was not created by mim synth") {
		t.Errorf("foreign schema: %v", err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM x_moodlemgr.precious`).Scan(&n); err != nil {
		t.Errorf("the foreign schema was touched: %v", err)
	}
	if _, err := in.Write(ctx, db.Pool, "Bad-Prefix", nil); err == nil {
		t.Error("a prefix that is not a lower-case identifier must be refused")
	}
}

func TestInsertMappingsIsIdempotent(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	in := generate(t, synth.Options{Scale: synth.Small})
	res, err := synth.InsertMappings(ctx, db.Pool, in.Mappings, "synth")
	if err != nil || res.Created != len(in.Mappings) || res.Updated != 0 {
		t.Fatalf("first insert: %+v %v", res, err)
	}
	res, err = synth.InsertMappings(ctx, db.Pool, in.Mappings, "synth")
	if err != nil || res.Created != 0 || res.Updated != 0 || res.Unchanged != len(in.Mappings) {
		t.Fatalf("second insert: %+v %v", res, err)
	}
	changed := append([]synth.Mapping(nil), in.Mappings...)
	changed[0].Active = !changed[0].Active
	if res, err = synth.InsertMappings(ctx, db.Pool, changed, "synth"); err != nil || res.Updated != 1 {
		t.Fatalf("one change: %+v %v", res, err)
	}
	var rows, events, groupSync int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE group_sync), (SELECT count(*) FROM ctl.course_mapping_event WHERE by = 'synth')
		FROM ctl.course_mapping WHERE created_by = 'synth' AND origin = 'synth'`).Scan(&rows, &groupSync, &events); err != nil {
		t.Fatal(err)
	}
	wantSync := 0
	for _, m := range in.Mappings {
		if m.GroupSync {
			wantSync++
		}
	}
	if rows != len(in.Mappings) || events != len(in.Mappings)+1 || groupSync != wantSync {
		t.Errorf("%d mappings (%d group sync), %d events; want %d (%d), %d", rows, groupSync, events, len(in.Mappings), wantSync, len(in.Mappings)+1)
	}
}

// The Manifest's definitions, written again in SQL over the written SITS
// and CMIS tables, the mappings in ctl.course_mapping and each site's
// Moodle state loaded into tables: the two must agree. This SQL is also a
// reference for the marts that will reproduce these counts.
func TestManifestAgreesWithSQL(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	in := generate(t, synth.Options{Scale: synth.Medium, Seed: 5})
	if _, err := in.Write(ctx, db.Pool, "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := synth.InsertMappings(ctx, db.Pool, in.Mappings, "synth"); err != nil {
		t.Fatal(err)
	}
	loadMoodle(t, db.Pool, in)
	m := in.Manifest
	q := func(sql string, args ...any) int {
		t.Helper()
		start := time.Now()
		defer func() {
			if d := time.Since(start); d > time.Second {
				t.Logf("slow check query (%s): %.200s", d, sql)
			}
		}()
		var n int
		if err := db.Pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	const (
		stu    = `sismgr.ucl_bdo_v_moodle_student`
		active = `(SELECT s.student_code, s.personal_tutor FROM sismgr.ucl_bdo_v_moodle_student s
		           JOIN ref.sits_enrolment_status e ON e.code = s.enrolment_status AND e.enrol
		           JOIN ref.sits_course_join_status j ON j.code = s.course_join_status AND j.open)`
		sitsCode = `CASE WHEN length(gm.student_code) = 9 AND left(gm.student_code, 1) = '0' THEN substr(gm.student_code, 2) ELSE gm.student_code END`
	)
	global := map[string][2]int{
		"active students": {m.ActiveStudents, q(`SELECT count(*) FROM ` + active + ` a`)},
		"registrations current year": {m.RegistrationsCurrentYear, q(`SELECT count(*) FROM sismgr.ucl_bdo_v_moodle_student_enrl r
			JOIN sismgr.ucl_bdo_v_moodle_module_struc o USING (mod_occ_bdo_id) WHERE o.mod_occ_year_code = '2025'`)},
		"active registrations": {m.ActiveRegistrations, q(`SELECT count(*) FROM sismgr.ucl_bdo_v_moodle_student_enrl r
			JOIN sismgr.ucl_bdo_v_moodle_module_struc o USING (mod_occ_bdo_id)
			JOIN ref.sits_registration_status l ON l.code = r.reg_status
			JOIN ` + active + ` a USING (student_code) WHERE o.mod_occ_year_code = '2025' AND l.level >= 2`)},
		"departments without faculty": {m.DepartmentsWithoutFaculty, q(`SELECT count(*) FROM sismgr.ucl_bdo_v_moodle_department WHERE dpt_fac_code IS NULL`)},
		"departments with empty id":   {m.DepartmentsWithEmptyID, q(`SELECT count(*) FROM sismgr.ucl_bdo_v_moodle_department WHERE dpt_bdo_id = ''`)},
		"routes under several programmes": {m.RouteCodesUnderSeveralProgrammes, q(`SELECT count(*) FROM (SELECT route_code FROM sismgr.ucl_bdo_v_moodle_route
			GROUP BY route_code HAVING count(DISTINCT prog_code) > 1) x`)},
		"students on two routes": {m.StudentsOnTwoRoutes, q(`SELECT count(*) FROM (SELECT student_code FROM sismgr.ucl_bdo_v_moodle_assignment
			GROUP BY student_code HAVING count(*) > 1) x`)},
		"students without email": {m.StudentsWithoutEmail, q(`SELECT count(*) FROM ` + stu + ` WHERE email IS NULL`)},
		"non-ASCII names":        {m.StudentsWithNonASCIIName, q(`SELECT count(*) FROM ` + stu + ` WHERE firstname || surname ~ '[^\x01-\x7f]' OR surname ~ '[^\x01-\x7f]'`)},
		"CMIS unknown students": {m.CMISMembersUnknownStudent, q(`SELECT count(*) FROM moodlemgr.cmis_moodle_v_group_member gm
			WHERE NOT EXISTS (SELECT 1 FROM ` + stu + ` s WHERE s.student_code = ` + sitsCode + `)`)},
		"CMIS members not registered": {m.CMISMembersNotRegistered, q(`SELECT count(*) FROM moodlemgr.cmis_moodle_v_group_member gm
			JOIN ` + stu + ` s ON s.student_code = ` + sitsCode + `
			WHERE NOT EXISTS (SELECT 1 FROM sismgr.ucl_bdo_v_moodle_student_enrl r WHERE r.student_code = s.student_code AND r.mod_occ_bdo_id = gm.mod_occ_bdo_id)`)},
	}
	for name, v := range global {
		if v[0] != v[1] {
			t.Errorf("%s: manifest %d, SQL %d", name, v[0], v[1])
		}
		if v[0] == 0 {
			t.Errorf("%s: zero, so the comparison proves nothing", name)
		}
	}

	for _, sm := range m.Sites {
		site := sm.Site
		// T, and each row resolved against the site's courses and accounts.
		if _, err := db.Pool.Exec(ctx, `DROP TABLE IF EXISTS t_rows; CREATE TABLE t_rows AS
			SELECT DISTINCT m.course_idnumber, r.student_code
			FROM ctl.course_mapping m
			JOIN sismgr.ucl_bdo_v_moodle_student_enrl r ON r.mod_occ_bdo_id = m.sis_key
			JOIN ref.sits_registration_status rl ON rl.code = r.reg_status
			JOIN ref.sits_registration_status ml ON ml.code = m.min_reg_status
			JOIN `+active+` a ON a.student_code = r.student_code
			WHERE m.instance = '`+site+`' AND m.active AND m.sis_kind = 'module_occurrence' AND rl.level >= ml.level AND rl.level > 0;
			ANALYZE t_rows`); err != nil {
			t.Fatal(err)
		}
		with := `WITH acct AS (SELECT idnumber, count(*) n, min(id) id FROM chk_user WHERE site = $1 AND idnumber <> '' GROUP BY idnumber),
			crs AS (SELECT idnumber, id FROM chk_course WHERE site = $1 AND idnumber <> ''),
			res AS (SELECT t.*, c.id course_id, a.n, a.id user_id FROM t_rows t LEFT JOIN crs c ON c.idnumber = t.course_idnumber
			        LEFT JOIN acct a ON a.idnumber = t.student_code),
			enr AS (SELECT course, uid, bool_or(NOT suspended) active FROM chk_enrol WHERE site = $1 AND student GROUP BY course, uid),
			gs AS (SELECT DISTINCT m.course_idnumber, g.group_bdo_id FROM ctl.course_mapping m
			       JOIN crs c ON c.idnumber = m.course_idnumber
			       JOIN moodlemgr.cmis_moodle_v_module_group g ON g.mod_occ_bdo_id = m.sis_key
			       WHERE m.instance = $1 AND m.active AND m.group_sync),
			gsm AS (SELECT gs.*, a.n FROM gs JOIN moodlemgr.cmis_moodle_v_group_member gm USING (group_bdo_id)
			        LEFT JOIN acct a ON a.idnumber = ` + sitsCode + `),
			tut AS (SELECT upper(upi) upi, count(*) n, bool_and(idnumber <> '') has_id FROM chk_user WHERE site = $1 AND upi <> '' GROUP BY upper(upi)) `
		got := map[string][2]int{
			"target rows":         {sm.TargetRows, q(with+`SELECT count(*) FROM res`, site)},
			"unknown course rows": {sm.UnknownCourseRows, q(with+`SELECT count(*) FROM res WHERE course_id IS NULL`, site)},
			"unknown courses":     {sm.UnknownCourses, q(with+`SELECT count(DISTINCT course_idnumber) FROM res WHERE course_id IS NULL`, site)},
			"unknown user rows":   {sm.UnknownUserRows, q(with+`SELECT count(*) FROM res WHERE course_id IS NOT NULL AND n IS NULL`, site)},
			"ambiguous user rows": {sm.AmbiguousUserRows, q(with+`SELECT count(*) FROM res WHERE course_id IS NOT NULL AND n > 1`, site)},
			"active memberships":  {sm.ActiveMemberships, q(with+`SELECT count(*) FROM res WHERE course_id IS NOT NULL AND n = 1`, site)},
			"active students":     {sm.ActiveStudents, q(with+`SELECT count(DISTINCT student_code) FROM res WHERE course_id IS NOT NULL AND n = 1`, site)},
			"missing accounts":    {sm.MissingAccounts, q(with+`SELECT count(DISTINCT student_code) FROM res WHERE course_id IS NOT NULL AND n IS NULL`, site)},
			"drift missing": {sm.DriftMissing, q(with+`SELECT count(*) FROM res LEFT JOIN enr e ON e.course = res.course_id AND e.uid = res.user_id
				WHERE course_id IS NOT NULL AND n = 1 AND e.course IS NULL`, site)},
			"drift suspended": {sm.DriftSuspended, q(with+`SELECT count(*) FROM res JOIN enr e ON e.course = res.course_id AND e.uid = res.user_id
				WHERE n = 1 AND NOT e.active`, site)},
			"drift extra": {sm.DriftExtra, q(with+`SELECT count(*) FROM chk_enrol e JOIN crs c ON c.id = e.course
				JOIN chk_user u ON u.site = e.site AND u.id = e.uid
				WHERE e.site = $1 AND e.student
				  AND c.idnumber IN (SELECT course_idnumber FROM ctl.course_mapping WHERE instance = $1 AND active)
				  AND NOT EXISTS (SELECT 1 FROM t_rows t WHERE t.course_idnumber = c.idnumber AND t.student_code = u.idnumber)`, site)},
			"duplicate idnumbers": {sm.DuplicateSameIDNumber, q(with+`SELECT count(*) FROM acct JOIN `+stu+` s ON s.student_code = acct.idnumber WHERE n > 1`, site)},
			"case-variant e-mails": {sm.DuplicateEmailCaseVariant, q(with+`SELECT count(*) FROM chk_user u WHERE u.site = $1 AND u.idnumber = '' AND u.email <> ''
				AND EXISTS (SELECT 1 FROM chk_user o JOIN `+stu+` s ON s.student_code = o.idnumber
				            WHERE o.site = $1 AND lower(o.email) = lower(u.email) AND o.email <> u.email)`, site)},
			"profile rows": {sm.ProfileFieldRows, q(with+`SELECT count(*) FROM chk_user u JOIN `+active+` a ON a.student_code = u.idnumber WHERE u.site = $1`, site)},
			"tutor pairs": {sm.PersonalTutorPairs, q(with+`SELECT count(*) FROM `+active+` a JOIN acct ON acct.idnumber = a.student_code AND acct.n = 1
				JOIN tut ON tut.upi = a.personal_tutor AND tut.n = 1 AND tut.has_id`, site)},
			"group sync courses":      {sm.GroupSyncCourses, q(with+`SELECT count(DISTINCT course_idnumber) FROM gs`, site)},
			"group sync groups":       {sm.GroupSyncGroups, q(with+`SELECT count(*) FROM gs`, site)},
			"group sync members":      {sm.GroupSyncMembers, q(with+`SELECT count(*) FROM gsm WHERE n = 1`, site)},
			"group sync unmatched":    {sm.GroupSyncMembersUnmatched, q(with+`SELECT count(*) FROM gsm WHERE n IS DISTINCT FROM 1`, site)},
			"groups without a member": {sm.GroupSyncGroupsWithoutMember, q(with+`SELECT count(*) FROM gs WHERE NOT EXISTS (SELECT 1 FROM gsm WHERE gsm.course_idnumber = gs.course_idnumber AND gsm.group_bdo_id = gs.group_bdo_id AND gsm.n = 1)`, site)},
			"MIM groups":              {sm.MIMGroups, q(`SELECT count(*) FROM chk_group WHERE site = $1 AND idnumber LIKE 'mim:%'`, site)},
			"stale MIM groups": {sm.StaleMIMGroups, q(with+`SELECT count(*) FROM chk_group g JOIN chk_course c ON c.site = g.site AND c.id = g.course
				WHERE g.site = $1 AND g.idnumber LIKE 'mim:%'
				  AND NOT EXISTS (SELECT 1 FROM gs WHERE gs.course_idnumber = c.idnumber AND 'mim:' || gs.group_bdo_id = g.idnumber)`, site)},
		}
		for name, v := range got {
			if v[0] != v[1] {
				t.Errorf("%s %s: manifest %d, SQL %d", site, name, v[0], v[1])
			}
		}
		if !sm.Archive && (sm.ActiveMemberships == 0 || sm.DriftMissing == 0 || sm.DriftExtra == 0) {
			t.Errorf("%s: nothing planted to compare: %+v", site, sm)
		}
	}
}

// loadMoodle copies what the SQL check needs of every site's state into tables.
func loadMoodle(t *testing.T, pool *pgxpool.Pool, in *synth.Institution) {
	t.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `
		CREATE TABLE chk_user (site text, id bigint, username text, idnumber text, email text, upi text);
		CREATE TABLE chk_course (site text, id bigint, idnumber text);
		CREATE TABLE chk_enrol (site text, course bigint, uid bigint, student boolean, suspended boolean);
		CREATE TABLE chk_group (site text, course bigint, idnumber text)`); err != nil {
		t.Fatal(err)
	}
	var users, courses, enrols, groups [][]any
	for _, s := range in.Sites {
		for _, u := range s.State.Users {
			users = append(users, []any{s.Name, u.ID, u.Username, u.IDNumber, u.Email, u.CustomFields["upi"]})
		}
		for _, c := range s.State.Courses {
			courses = append(courses, []any{s.Name, c.ID, c.IDNumber})
		}
		for _, e := range s.State.Enrolments {
			student := false
			for _, r := range e.RoleIDs {
				student = student || r == 5
			}
			enrols = append(enrols, []any{s.Name, e.CourseID, e.UserID, student, e.Suspended})
		}
		for _, g := range s.State.Groups {
			groups = append(groups, []any{s.Name, g.CourseID, g.IDNumber})
		}
	}
	for name, rows := range map[string][][]any{"chk_user": users, "chk_course": courses, "chk_enrol": enrols, "chk_group": groups} {
		cols := map[string][]string{"chk_user": {"site", "id", "username", "idnumber", "email", "upi"}, "chk_course": {"site", "id", "idnumber"},
			"chk_enrol": {"site", "course", "uid", "student", "suspended"}, "chk_group": {"site", "course", "idnumber"}}[name]
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{name}, cols, pgx.CopyFromRows(rows)); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `ANALYZE `+name); err != nil {
			t.Fatal(err)
		}
	}
}
