package synth

import (
	"strconv"
	"strings"

	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// Manifest says what the synthetic institution contains and what was planted
// in it, as counts that the transforms and exports must reproduce. Every
// count is computed from the generated data by the rules written on it (not
// from the generator's intentions), so a test that reproduces a count in SQL
// checks the SQL against these rules.
//
// Shared definitions:
//
//   - An active student is a student-view row whose enrolment_status enrols
//     (E, ED, ES, ET, EQ, PE, XE, I, CI, IR, IRF, LRF: ref.sits_enrolment_status,
//     migration 00030) and whose course_join_status is 'O'.
//   - A registration's level is CON 3, APP 2, NEW 1, REJ 0
//     (ref.sits_registration_status).
//   - The site's active mappings are the Mappings of that instance with
//     Active true (all sis_kind module_occurrence, sis_key = MOD_OCC_BDO_ID,
//     academic_year and course_year empty).
//   - The target rows T of a site are the distinct (course idnumber, student
//     code) pairs such that an active mapping of that course has sis_key =
//     the registration's mod_occ_bdo_id, the registration's level is at least
//     the mapping's min_reg_status level and above 0, and the student is
//     active. (No min_mod_occ_year limit: the counts hold for any limit up to
//     the current Year, since only current-year mappings are active.)
//   - A student's accounts on a site are the Moodle users whose idnumber
//     equals the SITS student code; a course exists when a Moodle course has
//     the idnumber (idnumbers are unique per site).
//   - A student-role enrolment is an enrolment whose role ids include 5
//     (student), whatever its method.
type Manifest struct {
	Scale string `json:"scale"`
	Seed  uint64 `json:"seed"`
	Year  int    `json:"year"`

	// Rows of each SITS view as written (every academic year).
	Faculties       int `json:"faculties"`
	Departments     int `json:"departments"`
	Programmes      int `json:"programmes"` // (prog_code, dpt_bdo_id) rows
	Routes          int `json:"routes"`     // (route_code, prog_code, dpt_bdo_id) rows
	Students        int `json:"students"`
	Assignments     int `json:"assignments"`
	ModuleInstances int `json:"module_instances"` // current year only, as UCL's view
	Occurrences     int `json:"occurrences"`      // this year and last year
	Registrations   int `json:"registrations"`    // this year and last year
	// OccurrencesCurrentYear and RegistrationsCurrentYear are those whose
	// occurrence's mod_occ_year_code is Year: what `min_year: Year` extracts.
	OccurrencesCurrentYear   int `json:"occurrences_current_year"`
	RegistrationsCurrentYear int `json:"registrations_current_year"`

	// ActiveStudents counts active students.
	ActiveStudents int `json:"active_students"`
	// StudentsByStatus counts students by enrolment_status.
	StudentsByStatus map[string]int `json:"students_by_status"`
	// ActiveRegistrations counts current-year registrations of level 2 or
	// more (CON, APP) of active students.
	ActiveRegistrations int `json:"active_registrations"`

	// Quirks of real SITS data, as planted.
	DepartmentsWithoutFaculty         int `json:"departments_without_faculty"`           // dpt_fac_code NULL
	DepartmentsWithEmptyID            int `json:"departments_with_empty_id"`             // dpt_bdo_id '' (NULL once read from Oracle or through the extractor)
	ProgrammesUnderSeveralDepartments int `json:"programmes_under_several_departments"`  // distinct prog_code with 2+ rows
	RouteCodesUnderSeveralProgrammes  int `json:"route_codes_under_several_programmes"`  // distinct route_code with 2+ prog_code
	StudentsOnTwoRoutes               int `json:"students_on_two_routes"`                // students with 2+ assignment rows
	StudentsWithoutFirstName          int `json:"students_without_first_name"`           // firstname NULL
	StudentsWithoutEmail              int `json:"students_without_email"`                // email NULL
	StudentsWithNonASCIIName          int `json:"students_with_non_ascii_name"`          // firstname or surname outside ASCII
	OccurrencesWithSlashInPeriod      int `json:"occurrences_with_slash_in_period"`      // '/' in mod_occ_psl_code
	OccurrencesWithoutDates           int `json:"occurrences_without_dates"`             // start and end NULL
	ModuleInstancesWithDecimalCredits int `json:"module_instances_with_decimal_credits"` // e.g. 7.5

	// CMIS rows as written.
	CMISGroups       int `json:"cmis_groups"`
	CMISGroupMembers int `json:"cmis_group_members"`
	CMISGroupTutors  int `json:"cmis_group_tutors"`
	// CMISEmptyGroups counts groups with no member row.
	CMISEmptyGroups int `json:"cmis_empty_groups"`
	// CMISMembersUnknownStudent counts member rows whose code, in SITS form
	// (a 9-digit code starting with 0 loses the 0), is no SITS student.
	CMISMembersUnknownStudent int `json:"cmis_members_unknown_student"`
	// CMISMembersNotRegistered counts member rows of known students who have
	// no registration row (any status) on the group's occurrence.
	CMISMembersNotRegistered int `json:"cmis_members_not_registered"`

	// Sites, in the order of Institution.Sites.
	Sites []SiteManifest `json:"sites"`
}

// SiteManifest is what was planted on one Moodle site. See Manifest for the
// shared definitions (active student, target rows T, accounts).
type SiteManifest struct {
	Site    string `json:"site"`
	Archive bool   `json:"archive"`

	// Moodle state sizes: categories, courses (the site course id 1 not
	// included), users (guest and admin included), enrolments (all methods
	// and roles), groups and groupings.
	Categories int `json:"categories"`
	Courses    int `json:"courses"`
	Users      int `json:"users"`
	Enrolments int `json:"enrolments"`
	Groups     int `json:"groups"`
	Groupings  int `json:"groupings"`
	// StudentAccounts are users whose idnumber is a SITS student code;
	// StaffAccounts users whose idnumber is a staff id.
	StudentAccounts int `json:"student_accounts"`
	StaffAccounts   int `json:"staff_accounts"`

	// Mappings of this site (rows), the active ones, those with group_sync
	// among the active, and the distinct course idnumbers of active ones.
	Mappings          int `json:"mappings"`
	ActiveMappings    int `json:"active_mappings"`
	GroupSyncMappings int `json:"group_sync_mappings"`
	MappedCourses     int `json:"mapped_courses"`
	// UnknownCourses are mapped course idnumbers (active mappings) with no
	// course on the site; UnknownCourseRows the target rows T in them.
	UnknownCourses    int `json:"unknown_courses"`
	UnknownCourseRows int `json:"unknown_course_rows"`

	// TargetRows is |T|. Of the rows whose course exists:
	//   UnknownUserRows: the student has no account;
	//   AmbiguousUserRows: the student has 2+ accounts (left to the merge list);
	//   ActiveMemberships: exactly one account: the membership the export
	//   asserts (status 1) — the threshold guard's "active memberships".
	TargetRows        int `json:"target_rows"`
	UnknownUserRows   int `json:"unknown_user_rows"`
	AmbiguousUserRows int `json:"ambiguous_user_rows"`
	ActiveMemberships int `json:"active_memberships"`
	// ActiveStudents is the number of distinct students in ActiveMemberships
	// (the threshold guard's "active students" of this site).
	ActiveStudents int `json:"active_students"`
	// MissingAccounts is the number of distinct students in UnknownUserRows.
	MissingAccounts int `json:"missing_accounts"`

	// Drift of the ActiveMemberships rows against Moodle:
	//   DriftMissing: the account has no student-role enrolment in the course;
	//   DriftSuspended: it has, and every one of them is suspended
	//   (suspended-but-should-be-active);
	//   the rest (ActiveMemberships - DriftMissing - DriftSuspended) have an
	//   active student-role enrolment.
	DriftMissing   int `json:"drift_missing"`
	DriftSuspended int `json:"drift_suspended"`
	// DriftExtra counts student-role enrolments in courses that have an
	// active mapping on this site whose user's idnumber is not a student of
	// that course in T (users with an empty or staff idnumber included).
	DriftExtra int `json:"drift_extra"`

	// DuplicateSameIDNumber counts SITS student codes carried by 2+ accounts.
	DuplicateSameIDNumber int `json:"duplicate_same_idnumber"`
	// DuplicateEmailCaseVariant counts accounts with an empty idnumber whose
	// e-mail, compared case-insensitively, equals that of another account
	// whose idnumber is a SITS student code (and differs from it in case).
	DuplicateEmailCaseVariant int `json:"duplicate_email_case_variant"`

	// ProfileFieldRows counts accounts whose idnumber is an active student's
	// code (one row each in the profile feed).
	ProfileFieldRows int `json:"profile_field_rows"`
	// PersonalTutorPairs counts active students with a personal_tutor who
	// have exactly one account, where exactly one account has
	// UPPER(profile field upi) = personal_tutor and a non-empty idnumber.
	PersonalTutorPairs int `json:"personal_tutor_pairs"`

	// Group sync. A group-sync course is a course idnumber with an active
	// group_sync mapping whose course exists. Its groups are the CMIS groups
	// whose mod_occ_bdo_id is the sis_key of one of those mappings (counted
	// per course). GroupSyncMembers counts (course, group, member) rows
	// whose member (in SITS form) has exactly one account; the others are
	// GroupSyncMembersUnmatched. GroupSyncGroupsWithoutMember counts groups
	// with no such matched member (the target then has one row with a NULL
	// user for the group), GroupSyncEmptyGroups those with no CMIS member.
	GroupSyncCourses             int `json:"group_sync_courses"`
	GroupSyncGroups              int `json:"group_sync_groups"`
	GroupSyncMembers             int `json:"group_sync_members"`
	GroupSyncMembersUnmatched    int `json:"group_sync_members_unmatched"`
	GroupSyncGroupsWithoutMember int `json:"group_sync_groups_without_member"`
	GroupSyncEmptyGroups         int `json:"group_sync_empty_groups"`

	// Moodle groups already there: MIMGroups carry GroupPrefix in their
	// idnumber; StaleMIMGroups are those whose idnumber after the prefix is
	// not a group of their course's group sync (as defined above);
	// TeacherGroups are all others.
	MIMGroups      int `json:"mim_groups"`
	StaleMIMGroups int `json:"stale_mim_groups"`
	TeacherGroups  int `json:"teacher_groups"`
}

// Site returns the manifest of the named site.
func (m *Manifest) Site(name string) (SiteManifest, bool) {
	for _, s := range m.Sites {
		if s.Site == name {
			return s, true
		}
	}
	return SiteManifest{}, false
}

func computeManifest(in *Institution) Manifest {
	m := Manifest{
		Scale: string(in.Scale), Seed: in.Seed, Year: in.Year,
		Faculties: len(in.Faculties), Departments: len(in.Departments), Programmes: len(in.Programmes),
		Routes: len(in.Routes), Students: len(in.Students), Assignments: len(in.Assignments),
		ModuleInstances: len(in.ModuleInstances), Occurrences: len(in.Occurrences), Registrations: len(in.Registrations),
		CMISGroups: len(in.Groups), CMISGroupMembers: len(in.GroupMembers), CMISGroupTutors: len(in.GroupTutors),
		StudentsByStatus: map[string]int{},
	}
	year := strconv.Itoa(in.Year)
	students := map[string]*Student{}
	for i := range in.Students {
		s := &in.Students[i]
		students[s.Code] = s
		m.StudentsByStatus[s.EnrolmentStatus]++
		if s.Active() {
			m.ActiveStudents++
		}
		if s.FirstName == "" {
			m.StudentsWithoutFirstName++
		}
		if s.Email == "" {
			m.StudentsWithoutEmail++
		}
		if hasNonASCII(s.FirstName) || hasNonASCII(s.Surname) {
			m.StudentsWithNonASCIIName++
		}
	}
	for _, d := range in.Departments {
		if d.FacCode == "" {
			m.DepartmentsWithoutFaculty++
		}
		if d.BDOID == "" {
			m.DepartmentsWithEmptyID++
		}
	}
	m.ProgrammesUnderSeveralDepartments = countMulti(len(in.Programmes), func(i int) (string, string) {
		return in.Programmes[i].Code, in.Programmes[i].DptBDOID
	})
	m.RouteCodesUnderSeveralProgrammes = countMulti(len(in.Routes), func(i int) (string, string) {
		return in.Routes[i].Code, in.Routes[i].ProgCode
	})
	m.StudentsOnTwoRoutes = countMulti(len(in.Assignments), func(i int) (string, string) {
		a := in.Assignments[i]
		return a.StudentCode, a.RouteCode + "|" + a.ProgCode + "|" + a.DptBDOID
	})
	for _, mi := range in.ModuleInstances {
		if strings.Contains(mi.Credits, ".") {
			m.ModuleInstancesWithDecimalCredits++
		}
	}
	occYear := map[string]string{}
	for _, o := range in.Occurrences {
		occYear[o.BDOID] = o.YearCode
		if o.YearCode == year {
			m.OccurrencesCurrentYear++
		}
		if strings.Contains(o.PSL, "/") {
			m.OccurrencesWithSlashInPeriod++
		}
		if o.Start.IsZero() && o.End.IsZero() {
			m.OccurrencesWithoutDates++
		}
	}
	registered := map[[2]string]bool{}
	regsByOcc := map[string][]*Registration{}
	for i := range in.Registrations {
		rg := &in.Registrations[i]
		registered[[2]string{rg.StudentCode, rg.OccBDOID}] = true
		regsByOcc[rg.OccBDOID] = append(regsByOcc[rg.OccBDOID], rg)
		if occYear[rg.OccBDOID] != year {
			continue
		}
		m.RegistrationsCurrentYear++
		if s := students[rg.StudentCode]; s != nil && s.Active() && regLevel[rg.RegStatus] >= 2 {
			m.ActiveRegistrations++
		}
	}
	membersByGroup := map[string][]string{}
	for _, gm := range in.GroupMembers {
		code := SITSStudentCode(gm.StudentCode)
		membersByGroup[gm.GroupBDOID] = append(membersByGroup[gm.GroupBDOID], code)
		switch {
		case students[code] == nil:
			m.CMISMembersUnknownStudent++
		case !registered[[2]string{code, gm.OccBDOID}]:
			m.CMISMembersNotRegistered++
		}
	}
	groupsByOcc := map[string][]string{}
	for _, grp := range in.Groups {
		groupsByOcc[grp.OccBDOID] = append(groupsByOcc[grp.OccBDOID], grp.BDOID)
		if len(membersByGroup[grp.BDOID]) == 0 {
			m.CMISEmptyGroups++
		}
	}
	staffIDs := map[string]bool{}
	for _, st := range in.Staff {
		staffIDs[st.ID] = true
	}
	for _, site := range in.Sites {
		m.Sites = append(m.Sites, siteManifest(in, site, students, staffIDs, regsByOcc, groupsByOcc, membersByGroup))
	}
	return m
}

// countMulti counts the distinct first values that come with 2+ distinct
// second values.
func countMulti(n int, kv func(int) (string, string)) int {
	seen := map[string]map[string]bool{}
	for i := 0; i < n; i++ {
		k, v := kv(i)
		if seen[k] == nil {
			seen[k] = map[string]bool{}
		}
		seen[k][v] = true
	}
	c := 0
	for _, vs := range seen {
		if len(vs) > 1 {
			c++
		}
	}
	return c
}

func siteManifest(in *Institution, site Site, students map[string]*Student, staffIDs map[string]bool,
	regsByOcc map[string][]*Registration, groupsByOcc map[string][]string, membersByGroup map[string][]string) SiteManifest {
	st := site.State
	sm := SiteManifest{Site: site.Name, Archive: site.Archive, Categories: len(st.Categories), Courses: len(st.Courses),
		Users: len(st.Users), Enrolments: len(st.Enrolments), Groups: len(st.Groups), Groupings: len(st.Groupings)}

	accounts := map[string][]*moodletest.User{}
	byID := map[int64]*moodletest.User{}
	for i := range st.Users {
		u := &st.Users[i]
		byID[u.ID] = u
		if u.IDNumber != "" {
			accounts[u.IDNumber] = append(accounts[u.IDNumber], u)
		}
		switch {
		case students[u.IDNumber] != nil:
			sm.StudentAccounts++
			if students[u.IDNumber].Active() {
				sm.ProfileFieldRows++
			}
		case staffIDs[u.IDNumber]:
			sm.StaffAccounts++
		}
	}
	courses := map[string]int64{}
	for _, c := range st.Courses {
		if c.IDNumber != "" {
			courses[c.IDNumber] = c.ID
		}
	}

	// Target rows.
	target := map[string]map[string]bool{} // course idnumber -> student codes
	syncOccs := map[string][]string{}      // group-sync course idnumber -> occurrences
	for _, mp := range in.Mappings {
		if mp.Instance != site.Name {
			continue
		}
		sm.Mappings++
		if !mp.Active {
			continue
		}
		sm.ActiveMappings++
		if target[mp.CourseIDNumber] == nil {
			target[mp.CourseIDNumber] = map[string]bool{}
		}
		if mp.GroupSync {
			sm.GroupSyncMappings++
			if _, ok := courses[mp.CourseIDNumber]; ok {
				syncOccs[mp.CourseIDNumber] = append(syncOccs[mp.CourseIDNumber], mp.SISKey)
			}
		}
		for _, rg := range regsByOcc[mp.SISKey] {
			s := students[rg.StudentCode]
			if s != nil && s.Active() && regLevel[rg.RegStatus] > 0 && regLevel[rg.RegStatus] >= regLevel[mp.MinRegStatus] {
				target[mp.CourseIDNumber][rg.StudentCode] = true
			}
		}
	}
	sm.MappedCourses = len(target)
	// Student-role enrolments by course and user.
	type cu struct{ course, user int64 }
	studentEnrol := map[cu][2]int{} // active, suspended counts
	for _, e := range st.Enrolments {
		isStudent := false
		for _, r := range e.RoleIDs {
			isStudent = isStudent || r == roleStudent
		}
		if !isStudent {
			continue
		}
		v := studentEnrol[cu{e.CourseID, e.UserID}]
		if e.Suspended {
			v[1]++
		} else {
			v[0]++
		}
		studentEnrol[cu{e.CourseID, e.UserID}] = v
	}
	activeStudents, missing := map[string]bool{}, map[string]bool{}
	for idn, codes := range target {
		sm.TargetRows += len(codes)
		cid, exists := courses[idn]
		if !exists {
			sm.UnknownCourses++
			sm.UnknownCourseRows += len(codes)
			continue
		}
		for code := range codes {
			switch accts := accounts[code]; len(accts) {
			case 0:
				sm.UnknownUserRows++
				missing[code] = true
			case 1:
				sm.ActiveMemberships++
				activeStudents[code] = true
				v := studentEnrol[cu{cid, accts[0].ID}]
				switch {
				case v[0] == 0 && v[1] == 0:
					sm.DriftMissing++
				case v[0] == 0:
					sm.DriftSuspended++
				}
			default:
				sm.AmbiguousUserRows++
			}
		}
	}
	sm.ActiveStudents, sm.MissingAccounts = len(activeStudents), len(missing)
	courseIDN := map[int64]string{}
	for _, c := range st.Courses {
		courseIDN[c.ID] = c.IDNumber
	}
	for k, v := range studentEnrol {
		idn := courseIDN[k.course]
		codes, mapped := target[idn]
		if idn == "" || !mapped {
			continue
		}
		if !codes[byID[k.user].IDNumber] {
			sm.DriftExtra += v[0] + v[1]
		}
	}

	// Duplicates.
	emailOwner := map[string][]*moodletest.User{}
	for code, accts := range accounts {
		if students[code] == nil {
			continue
		}
		if len(accts) > 1 {
			sm.DuplicateSameIDNumber++
		}
		for _, u := range accts {
			if u.Email != "" {
				emailOwner[strings.ToLower(u.Email)] = append(emailOwner[strings.ToLower(u.Email)], u)
			}
		}
	}
	for i := range st.Users {
		u := &st.Users[i]
		if u.IDNumber != "" || u.Email == "" {
			continue
		}
		for _, o := range emailOwner[strings.ToLower(u.Email)] {
			if o.Email != u.Email {
				sm.DuplicateEmailCaseVariant++
				break
			}
		}
	}

	// Personal tutors.
	byUPI := map[string][]*moodletest.User{}
	for i := range st.Users {
		u := &st.Users[i]
		if v := u.CustomFields["upi"]; v != "" {
			byUPI[strings.ToUpper(v)] = append(byUPI[strings.ToUpper(v)], u)
		}
	}
	for _, s := range in.Students {
		if !s.Active() || s.PersonalTutor == "" || len(accounts[s.Code]) != 1 {
			continue
		}
		if ts := byUPI[s.PersonalTutor]; len(ts) == 1 && ts[0].IDNumber != "" {
			sm.PersonalTutorPairs++
		}
	}

	// Group sync.
	sm.GroupSyncCourses = len(syncOccs)
	syncGroups := map[string]map[string]bool{} // course idnumber -> group BDO ids
	for idn, occs := range syncOccs {
		syncGroups[idn] = map[string]bool{}
		for _, occ := range occs {
			for _, gid := range groupsByOcc[occ] {
				if syncGroups[idn][gid] {
					continue
				}
				syncGroups[idn][gid] = true
				sm.GroupSyncGroups++
				members := membersByGroup[gid]
				if len(members) == 0 {
					sm.GroupSyncEmptyGroups++
				}
				matched := 0
				for _, code := range members {
					if len(accounts[code]) == 1 {
						matched++
					} else {
						sm.GroupSyncMembersUnmatched++
					}
				}
				sm.GroupSyncMembers += matched
				if matched == 0 {
					sm.GroupSyncGroupsWithoutMember++
				}
			}
		}
	}
	for _, grp := range st.Groups {
		if !strings.HasPrefix(grp.IDNumber, GroupPrefix) {
			sm.TeacherGroups++
			continue
		}
		sm.MIMGroups++
		if !syncGroups[courseIDN[grp.CourseID]][strings.TrimPrefix(grp.IDNumber, GroupPrefix)] {
			sm.StaleMIMGroups++
		}
	}
	return sm
}
