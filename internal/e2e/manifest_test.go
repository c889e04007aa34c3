package e2e_test

import (
	"testing"

	"github.com/mimwarehouse/mim/internal/synth"
)

// The whole way through on the small institution: SITS and CMIS written,
// extracted with the real extractors, the simulated Moodle sites extracted
// through their web services, synth's mappings, one transform. Every count
// synth.Manifest defines that the marts can compute must come out as
// planted.
func TestMartsReproduceThePlantedInstitution(t *testing.T) {
	w := newWorld(t, synth.Options{Scale: synth.Small})
	w.extract(t)
	w.mapAndSet(t)
	res, err := w.Transform(t, project(t))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Committed || len(res.Failures) != 0 || len(res.Skipped) != 0 {
		t.Fatalf("transform: committed %v, failures %v, skipped %v", res.Committed, res.Failures, res.Skipped)
	}
	assertManifest(t, w)
	checkDetails(t, w)
}

// assertManifest compares the marts with the Manifest, site by site.
func assertManifest(t testing.TB, w *world) {
	t.Helper()
	m := w.In.Manifest
	pool := w.DB.Pool
	q := func(sql string, args ...any) int { t.Helper(); return count(t, pool, sql, args...) }
	check := func(what string, want, got int) {
		t.Helper()
		if want != got {
			t.Errorf("%s: planted %d, marts %d", what, want, got)
		}
	}
	nonzero := func(what string, n int) {
		t.Helper()
		if n == 0 {
			t.Errorf("%s: nothing planted, so the comparison proves nothing", what)
		}
	}

	// The institution.
	check("active students", m.ActiveStudents, q(`SELECT count(*) FROM int.student WHERE active`))
	check("students without e-mail", m.StudentsWithoutEmail, q(`SELECT count(*) FROM mart.dq_student_missing_fields WHERE field = 'email'`))
	check("students without first name", m.StudentsWithoutFirstName, q(`SELECT count(*) FROM mart.dq_student_missing_fields WHERE field = 'firstname'`))
	check("departments without faculty", m.DepartmentsWithoutFaculty, q(`SELECT count(*) FROM mart.dq_department WHERE problem = 'no faculty'`))
	check("departments without id", m.DepartmentsWithEmptyID, q(`SELECT count(*) FROM mart.dq_department WHERE problem = 'no BDO id'`))
	check("students on two routes", m.StudentsOnTwoRoutes, q(`SELECT count(*) FROM int.student WHERE assignments > 1`))
	check("CMIS members of no student", m.CMISMembersUnknownStudent, q(`SELECT count(*) FROM mart.dq_cmis_unknown_student`))
	check("CMIS members not registered", m.CMISMembersNotRegistered, q(`SELECT count(*) FROM mart.dq_cmis_not_registered`))
	for _, n := range []struct {
		what string
		n    int
	}{{"students without e-mail", m.StudentsWithoutEmail}, {"departments without faculty", m.DepartmentsWithoutFaculty},
		{"CMIS members of no student", m.CMISMembersUnknownStudent}, {"CMIS members not registered", m.CMISMembersNotRegistered}} {
		nonzero(n.what, n.n)
	}

	for _, sm := range m.Sites {
		site := sm.Site
		at := func(what string) string { return site + ": " + what }
		s := func(sql string) int { t.Helper(); return q(sql, site) }

		// What the site holds, as the marts see it.
		check(at("courses"), sm.Courses, s(`SELECT count(*) FROM mart.dim_course WHERE instance = $1`))
		check(at("users"), sm.Users, s(`SELECT count(*) FROM stg.moodle_user WHERE instance = $1`))
		check(at("enrolments"), sm.Enrolments, s(`SELECT count(DISTINCT (course_id, user_id)) FROM mart.fct_enrolment_actual WHERE instance = $1`))
		check(at("student accounts"), sm.StudentAccounts, s(`SELECT coalesce(sum(accounts), 0) FROM mart.dim_person WHERE instance = $1 AND person_kind = 'student'`))
		check(at("active mappings"), sm.ActiveMappings, s(`SELECT count(*) FROM int.mapping WHERE instance = $1`))
		check(at("mapped courses"), sm.MappedCourses, s(`SELECT count(DISTINCT course_idnumber) FROM int.mapping WHERE instance = $1`))
		check(at("group-sync mappings"), sm.GroupSyncMappings, s(`SELECT count(*) FROM int.mapping WHERE instance = $1 AND group_sync`))

		// The target and how it resolves on the site.
		const student = `instance = $1 AND person_kind = 'student' AND role = 'student'`
		check(at("target rows"), sm.TargetRows, s(`SELECT count(*) FROM mart.fct_enrolment_target WHERE `+student))
		check(at("rows of unknown courses"), sm.UnknownCourseRows, s(`SELECT count(*) FROM mart.fct_enrolment_target WHERE `+student+` AND course_status = 'none'`))
		check(at("unknown courses"), sm.UnknownCourses, s(`SELECT count(*) FROM mart.dq_unknown_course WHERE instance = $1`))
		check(at("unknown course rows in dq"), sm.UnknownCourseRows, s(`SELECT coalesce(sum(target_rows), 0) FROM mart.dq_unknown_course WHERE instance = $1`))
		check(at("drift unknown_course"), sm.UnknownCourseRows, s(`SELECT count(*) FROM mart.enrolment_drift WHERE instance = $1 AND kind = 'unknown_course'`))
		check(at("drift unknown_user"), sm.UnknownUserRows, s(`SELECT count(*) FROM mart.enrolment_drift WHERE instance = $1 AND kind = 'unknown_user'`))
		check(at("drift ambiguous_user"), sm.AmbiguousUserRows, s(`SELECT count(*) FROM mart.enrolment_drift WHERE instance = $1 AND kind = 'ambiguous_user'`))
		check(at("students without an account"), sm.MissingAccounts, s(`SELECT count(*) FROM mart.dq_student_no_account WHERE instance = $1`))
		check(at("active memberships (IMS)"), sm.ActiveMemberships, s(`SELECT count(*) FROM mart.exp_ims_membership WHERE instance = $1 AND roletype = '01' AND status = 1`))
		check(at("active students (IMS)"), sm.ActiveStudents, s(`SELECT count(DISTINCT user_idnumber) FROM mart.exp_ims_membership WHERE instance = $1 AND roletype = '01'`))

		// Drift against what Moodle has.
		check(at("drift missing"), sm.DriftMissing, s(`SELECT count(*) FROM mart.enrolment_drift WHERE instance = $1 AND kind = 'missing'`))
		check(at("drift suspended"), sm.DriftSuspended, s(`SELECT count(*) FROM mart.enrolment_drift WHERE instance = $1 AND kind = 'suspended'`))
		check(at("drift extra"), sm.DriftExtra, s(`SELECT count(*) FROM mart.enrolment_drift WHERE instance = $1 AND kind = 'extra' AND role = 'student'`))

		// Duplicates, profile feed, tutors.
		check(at("duplicate idnumbers"), sm.DuplicateSameIDNumber, s(`SELECT count(*) FROM mart.dq_duplicate_idnumber WHERE instance = $1 AND person_kind = 'student'`))
		check(at("case-variant e-mails"), sm.DuplicateEmailCaseVariant, s(`SELECT count(*) FROM mart.dq_case_variant_email WHERE instance = $1`))
		// Every duplicate account is a pair, but for those a merge already
		// took out of use (suspended, no enrolment left).
		pairs := len(newOracle(w.In).mergePairs(site))
		if max := sm.DuplicateEmailCaseVariant + dupExtraAccounts(t, w, site); pairs > max || pairs == 0 && max > 0 && site == m.Sites[0].Site {
			t.Errorf("%s: the oracle proposes %d merges of %d duplicate accounts", site, pairs, max)
		}
		check(at("merge pairs"), pairs, s(`SELECT count(*) FROM mart.exp_merge_candidates WHERE instance = $1`))
		check(at("profile rows"), sm.ProfileFieldRows, s(`SELECT count(*) FROM mart.exp_profile_fields WHERE instance = $1`))
		check(at("tutor pairs"), sm.PersonalTutorPairs, s(`SELECT count(*) FROM mart.exp_personal_tutor WHERE instance = $1`))

		// Group sync.
		check(at("group-sync courses"), sm.GroupSyncCourses, s(`SELECT count(DISTINCT courseid) FROM mart.exp_group_target WHERE instance = $1`))
		check(at("group-sync groups"), sm.GroupSyncGroups, s(`SELECT count(DISTINCT (courseid, group_idnumber)) FROM mart.exp_group_target WHERE instance = $1`))
		check(at("group-sync members"), sm.GroupSyncMembers, s(`SELECT count(*) FROM mart.exp_group_target WHERE instance = $1 AND userid IS NOT NULL`))
		check(at("groups without a member"), sm.GroupSyncGroupsWithoutMember, s(`SELECT count(*) FROM mart.exp_group_target WHERE instance = $1 AND userid IS NULL`))
		check(at("empty CMIS groups"), sm.GroupSyncEmptyGroups, s(`SELECT count(*) FROM mart.exp_group_target WHERE instance = $1 AND cmis_members = 0`))
		check(at("unmatched CMIS members"), sm.GroupSyncMembersUnmatched, s(`SELECT coalesce(sum(cmis_members - matched), 0) FROM (
			SELECT courseid, group_idnumber, min(cmis_members) AS cmis_members, count(userid) AS matched
			FROM mart.exp_group_target WHERE instance = $1 GROUP BY courseid, group_idnumber) g`))
		check(at("MIM groups"), sm.MIMGroups, s(`SELECT count(*) FROM stg.moodle_group g JOIN int.site USING (instance)
			WHERE g.instance = $1 AND starts_with(g.idnumber, site.group_prefix)`))
		check(at("stale MIM groups"), sm.StaleMIMGroups, s(`SELECT count(*) FROM stg.moodle_group g JOIN int.site USING (instance)
			WHERE g.instance = $1 AND starts_with(g.idnumber, site.group_prefix)
			  AND NOT EXISTS (SELECT 1 FROM mart.exp_group_target x WHERE x.instance = g.instance AND x.courseid = g.course_id
			                  AND x.group_idnumber = g.idnumber)`))

		if !sm.Archive {
			for _, n := range []struct {
				what string
				n    int
			}{{"target rows", sm.TargetRows}, {"unknown user rows", sm.UnknownUserRows}, {"drift missing", sm.DriftMissing},
				{"drift suspended", sm.DriftSuspended}, {"drift extra", sm.DriftExtra}, {"unknown courses", sm.UnknownCourses}} {
				nonzero(at(n.what), n.n)
			}
		}
	}
	// The first site carries every quirk the small institution plants.
	main := m.Sites[0]
	for _, n := range []struct {
		what string
		n    int
	}{{"duplicate idnumbers", main.DuplicateSameIDNumber}, {"case-variant e-mails", main.DuplicateEmailCaseVariant},
		{"ambiguous user rows", main.AmbiguousUserRows}, {"tutor pairs", main.PersonalTutorPairs},
		{"group-sync members", main.GroupSyncMembers}, {"stale MIM groups", main.StaleMIMGroups}} {
		nonzero(main.Site+": "+n.what, n.n)
	}
}

// dupExtraAccounts counts, from the simulated site's own state, the
// accounts beyond the first of every SITS student whose code several
// accounts carry: each is one merge pair.
func dupExtraAccounts(t testing.TB, w *world, site string) int {
	t.Helper()
	students := map[string]bool{}
	for _, s := range w.In.Students {
		students[s.Code] = true
	}
	for _, s := range w.In.Sites {
		if s.Name != site {
			continue
		}
		per := map[string]int{}
		for _, u := range s.State.Users {
			if students[u.IDNumber] {
				per[u.IDNumber]++
			}
		}
		n := 0
		for _, c := range per {
			n += c - 1
		}
		return n
	}
	t.Fatalf("no site %s", site)
	return 0
}
