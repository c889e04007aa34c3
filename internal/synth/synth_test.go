package synth_test

import (
	"bytes"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/mapping"
	"github.com/mimwarehouse/mim/internal/synth"
)

func generate(t testing.TB, opts synth.Options) *synth.Institution {
	t.Helper()
	in, err := synth.Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestGenerateIsDeterministic(t *testing.T) {
	a := generate(t, synth.Options{Scale: synth.Small, Seed: 7})
	b := generate(t, synth.Options{Scale: synth.Small, Seed: 7})
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave two different institutions")
	}
	c := generate(t, synth.Options{Scale: synth.Small, Seed: 8})
	if reflect.DeepEqual(a.Students, c.Students) {
		t.Error("another seed gave the same students")
	}
	if _, err := synth.Generate(synth.Options{Scale: "huge"}); err == nil {
		t.Error("an unknown scale must be refused")
	}
}

var (
	studentCode = regexp.MustCompile(`^\d{8}$`)
	cmisCode    = regexp.MustCompile(`^0\d{8}$`)
	guid        = regexp.MustCompile(`^[0-9A-F]{32}$`)
	upi         = regexp.MustCompile(`^[A-Z]{5}\d{2}$`)
	username    = regexp.MustCompile(`^[a-z]{7}$`)
	idnumber    = regexp.MustCompile(`^[A-Z]{4}\d{4}-[A-E]\d[UP]-[A-Z0-9_]+-\d{4}$`)
)

// The planted quirks of real SITS data are all there, even at small scale.
func TestSmallInstitutionCarriesTheQuirks(t *testing.T) {
	in := generate(t, synth.Options{Scale: synth.Small})
	m := in.Manifest
	for name, n := range map[string]int{
		"departments without faculty": m.DepartmentsWithoutFaculty, "departments with empty id": m.DepartmentsWithEmptyID,
		"programmes under several departments": m.ProgrammesUnderSeveralDepartments,
		"routes under several programmes":      m.RouteCodesUnderSeveralProgrammes, "students on two routes": m.StudentsOnTwoRoutes,
		"students without first name": m.StudentsWithoutFirstName, "students without email": m.StudentsWithoutEmail,
		"non-ASCII names": m.StudentsWithNonASCIIName, "'/' in periods": m.OccurrencesWithSlashInPeriod,
		"occurrences without dates": m.OccurrencesWithoutDates, "decimal credits": m.ModuleInstancesWithDecimalCredits,
		"CMIS members unknown to SITS": m.CMISMembersUnknownStudent, "CMIS members not registered": m.CMISMembersNotRegistered,
		"empty CMIS groups":        m.CMISEmptyGroups,
		"interrupted students (I)": m.StudentsByStatus["I"], "withdrawn students (L)": m.StudentsByStatus["L"],
	} {
		if n == 0 {
			t.Errorf("no %s", name)
		}
	}
	main, _ := m.Site("main")
	for name, n := range map[string]int{
		"missing accounts": main.MissingAccounts, "duplicate idnumbers": main.DuplicateSameIDNumber,
		"case-variant duplicates": main.DuplicateEmailCaseVariant, "drift missing": main.DriftMissing,
		"drift suspended": main.DriftSuspended, "drift extra": main.DriftExtra, "unknown courses": main.UnknownCourses,
		"group sync groups": main.GroupSyncGroups, "MIM groups": main.MIMGroups, "stale MIM groups": main.StaleMIMGroups,
		"teacher groups": main.TeacherGroups, "personal tutor pairs": main.PersonalTutorPairs,
	} {
		if n == 0 {
			t.Errorf("main site: no %s", name)
		}
	}
	if len(in.Sites) != 2 || in.Sites[1].Name != "archive" || !in.Sites[1].Archive {
		t.Errorf("sites %v", in.Sites)
	}

	seen := map[string]bool{}
	checkGUID := func(id, what string) {
		if !guid.MatchString(id) || seen[id] {
			t.Errorf("%s id %q is not a fresh 32-hex GUID", what, id)
		}
		seen[id] = true
	}
	for _, d := range in.Departments {
		if d.BDOID != "" {
			checkGUID(d.BDOID, "department")
		}
	}
	for _, o := range in.Occurrences {
		checkGUID(o.BDOID, "occurrence")
	}
	for _, g := range in.Groups {
		checkGUID(g.BDOID, "group")
	}
	for _, s := range in.Students {
		if !studentCode.MatchString(s.Code) || !upi.MatchString(s.UPI) || !username.MatchString(s.Username) {
			t.Errorf("student %q %q %q", s.Code, s.UPI, s.Username)
		}
	}
	known := 0
	for _, gm := range in.GroupMembers {
		if !cmisCode.MatchString(gm.StudentCode) {
			t.Errorf("CMIS code %q is not 9 digits with a leading zero", gm.StudentCode)
		}
		if synth.SITSStudentCode(gm.StudentCode) == gm.StudentCode[1:] {
			known++
		}
	}
	slashed := 0
	for _, mp := range in.Mappings {
		if !idnumber.MatchString(mp.CourseIDNumber) {
			t.Errorf("course idnumber %q does not follow the convention", mp.CourseIDNumber)
		}
		if strings.Contains(mp.CourseIDNumber, "_") {
			slashed++
		}
	}
	if slashed == 0 {
		t.Error("no mapped course has a '/' period turned into '_'")
	}
}

func TestMoodleStatesAreConsistent(t *testing.T) {
	in := generate(t, synth.Options{Scale: synth.Medium, Seed: 3})
	if len(in.Sites) != 3 {
		t.Fatalf("medium has %d sites", len(in.Sites))
	}
	for _, site := range in.Sites {
		st := site.State
		users, usernames := map[int64]bool{}, map[string]bool{}
		for _, u := range st.Users {
			if u.ID <= 0 || users[u.ID] || usernames[u.Username] || u.Username != strings.ToLower(u.Username) {
				t.Errorf("%s: user %d %q repeated or not lower case", site.Name, u.ID, u.Username)
			}
			users[u.ID], usernames[u.Username] = true, true
		}
		courses, idns := map[int64]bool{}, map[string]bool{}
		cats := map[int64]bool{}
		for _, c := range st.Categories {
			cats[c.ID] = true
		}
		for _, c := range st.Courses {
			if c.ID <= 1 || courses[c.ID] || (c.IDNumber != "" && idns[c.IDNumber]) || !cats[c.CategoryID] {
				t.Errorf("%s: course %d %q repeated or in no category", site.Name, c.ID, c.IDNumber)
			}
			courses[c.ID], idns[c.IDNumber] = true, true
		}
		enrolled := map[[2]int64]bool{}
		for _, e := range st.Enrolments {
			if !users[e.UserID] || !courses[e.CourseID] || len(e.RoleIDs) == 0 {
				t.Errorf("%s: enrolment %+v refers to nothing", site.Name, e)
			}
			enrolled[[2]int64{e.CourseID, e.UserID}] = true
		}
		groups := map[int64]bool{}
		for _, g := range st.Groups {
			groups[g.ID] = true
			for _, m := range g.Members {
				if !enrolled[[2]int64{g.CourseID, m}] {
					t.Errorf("%s: group %d member %d is not enrolled in course %d", site.Name, g.ID, m, g.CourseID)
				}
			}
		}
		for _, gg := range st.Groupings {
			for _, g := range gg.Groups {
				if !groups[g] {
					t.Errorf("%s: grouping %d holds unknown group %d", site.Name, gg.ID, g)
				}
			}
		}
	}
}

func TestMappingsCSVIsWhatTheImporterReads(t *testing.T) {
	in := generate(t, synth.Options{Scale: synth.Small})
	var buf bytes.Buffer
	if err := synth.WriteMappingsCSV(&buf, in.Mappings); err != nil {
		t.Fatal(err)
	}
	rows, probs := mapping.ParseCSV(&buf, mapping.Defaults{Origin: "import:synth.csv"},
		mapping.Knowledge{Sites: []string{"main", "archive"}, Roles: []string{"student"}})
	if len(probs) > 0 {
		t.Fatalf("the importer refuses the file: %v", probs)
	}
	if len(rows) != len(in.Mappings) {
		t.Fatalf("%d rows read back, %d written", len(rows), len(in.Mappings))
	}
	for i, r := range rows {
		m := in.Mappings[i]
		if r.Instance != m.Instance || r.CourseIDNumber != m.CourseIDNumber || r.SISKey != m.SISKey || r.SISKind != m.SISKind ||
			r.Active != m.Active || r.GroupSync != m.GroupSync || r.MinRegStatus != m.MinRegStatus {
			t.Errorf("row %d read back as %+v, written %+v", i, r.Mapping, m)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	for _, sc := range []synth.Scale{synth.Small, synth.Medium} {
		b.Run(string(sc), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				generate(b, synth.Options{Scale: sc})
			}
		})
	}
}
