// Package synth builds a deterministic synthetic institution: SITS views and
// CMIS timetabling groups written into PostgreSQL schemas shaped like the
// Oracle originals, a matching state for each simulated Moodle site (with
// missing and duplicate accounts and enrolment drift planted on purpose),
// the course mappings that tie them together, and a Manifest of what was
// planted, which the transform tests assert against. The same seed and
// scale always give the same institution.
package synth

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// Scale is the size of the institution.
type Scale string

// Scales.
const (
	// Small is a few hundred students on two Moodle sites, for tests.
	Small Scale = "small"
	// Medium is about 5,000 students on three sites.
	Medium Scale = "medium"
	// UCL is the size of UCL in 2021: about 50,000 students, 290,000 module
	// registrations, 15,000 Moodle courses, 38,000 CMIS groups, four sites.
	UCL Scale = "ucl"
)

// Scales lists the scales by size.
var Scales = []Scale{Small, Medium, UCL}

// ParseScale checks a scale name.
func ParseScale(s string) (Scale, error) {
	for _, sc := range Scales {
		if string(sc) == s {
			return sc, nil
		}
	}
	return "", fmt.Errorf("unknown scale %q (use small, medium or ucl)", s)
}

// size holds the figures a scale is generated to.
type size struct {
	faculties, departments, programmes, routes int
	students, staff                            int
	moduleInstances                            int     // current academic year
	occurrencesPerInstance                     float64 // per instance and year
	registrations                              int     // all years
	cmisGroups                                 int
	courses                                    int // Moodle courses over every site
	sites                                      []siteSpec
	quirks                                     int // how many of each rare quirk (departments without faculty, ...)
}

type siteSpec struct {
	name      string
	faculties []string // faculties whose current-year courses live here; "*" = the rest
	archive   bool     // holds the previous year's courses
}

var sizes = map[Scale]size{
	Small: {faculties: 3, departments: 8, programmes: 20, routes: 34, students: 300, staff: 40,
		moduleInstances: 40, occurrencesPerInstance: 2.6, registrations: 1800, cmisGroups: 160, courses: 90,
		sites: []siteSpec{{name: "main", faculties: []string{"*"}}, {name: "archive", archive: true}}, quirks: 1},
	Medium: {faculties: 8, departments: 30, programmes: 400, routes: 730, students: 5000, staff: 500,
		moduleInstances: 1100, occurrencesPerInstance: 2.6, registrations: 29000, cmisGroups: 3800, courses: 1600,
		sites: []siteSpec{{name: "main", faculties: []string{"*"}}, {name: "archive", archive: true},
			{name: "ioe", faculties: []string{"EDU"}}}, quirks: 2},
	UCL: {faculties: 15, departments: 104, programmes: 2368, routes: 4334, students: 50000, staff: 4200,
		moduleInstances: 10500, occurrencesPerInstance: 2.6, registrations: 290000, cmisGroups: 38000, courses: 15000,
		sites: []siteSpec{{name: "main", faculties: []string{"*"}}, {name: "archive", archive: true},
			{name: "ioe", faculties: []string{"EDU"}}, {name: "medicine", faculties: []string{"MED"}}}, quirks: 3},
}

// Options choose the institution.
type Options struct {
	Scale Scale
	// Seed makes a different institution of the same shape; 0 means 1.
	Seed uint64
	// Year is the current academic start year (2025 for 2025/26); 0 means 2025.
	Year int
}

// Institution is everything generated: the SITS and CMIS rows, the Moodle
// sites, the course mappings and the Manifest.
type Institution struct {
	Scale Scale
	Seed  uint64
	Year  int

	Faculties       []Faculty
	Departments     []Department
	Programmes      []Programme
	Routes          []Route
	Students        []Student
	Assignments     []Assignment
	Staff           []Staff
	ModuleInstances []ModuleInstance
	Occurrences     []Occurrence
	Registrations   []Registration

	Groups       []Group
	GroupMembers []GroupMember
	GroupTutors  []GroupTutor

	// Sites are the simulated Moodle sites, in a fixed order.
	Sites []Site
	// Mappings tie Moodle courses to SITS module occurrences.
	Mappings []Mapping
	Manifest Manifest
}

// Site is one simulated Moodle site.
type Site struct {
	Name string
	// Archive sites hold the previous academic year, mapped but inactive.
	Archive bool
	State   *moodletest.State
}

// Faculty is a UCL_BDO_V_MOODLE_FACULTIES row.
type Faculty struct{ Code, Name string }

// Department is a UCL_BDO_V_MOODLE_DEPARTMENT row. BDOID is "" for the
// planted departments without an id; FacCode is "" (NULL) for those without
// a faculty.
type Department struct {
	BDOID, Code, Name, FacCode string
	stems                      []string
}

// Programme is a UCL_BDO_V_MOODLE_PROGRAMME row.
type Programme struct {
	Code, Name, DptBDOID, IOESessions string
	level                             byte // U, T or R
	dept                              int
}

// Route is a UCL_BDO_V_MOODLE_ROUTE row.
type Route struct {
	Code, Name, ProgCode, DptBDOID, IOESessions string
	prog                                        int
}

// Student is a UCL_BDO_V_MOODLE_STUDENT row. FirstName, Email and
// PersonalTutor are "" where SITS has NULL.
type Student struct {
	Code, Username, UPI, FirstName, Surname, Name, Email string
	DptBDOID, PersonalTutor, EnrolmentStatus, JoinStatus string
	pg, research                                         bool
	studyYear                                            int
	dept                                                 int
}

// Active is the Manifest's definition of an active student: an enrolment
// status that enrols (ref.sits_enrolment_status) and an open course join.
func (s *Student) Active() bool { return enrols[s.EnrolmentStatus] && s.JoinStatus == "O" }

// Assignment is a UCL_BDO_V_MOODLE_ASSIGNMENT row.
type Assignment struct {
	StudentCode, RouteCode, ProgCode, DptBDOID, FacCode, PostUndergrad, CourseYear string
}

// Staff is a member of staff: module leader, personal tutor, group tutor.
// They are not a SITS view; they appear as UPIs in the views and as Moodle
// accounts (idnumber = ID, profile field upi).
type Staff struct {
	ID, UPI, Username, FirstName, Surname, Email, LecturerID string
	dept                                                     int
}

// ModuleInstance is a UCL_BDO_V_MOODLE_MODULE_INST row (current year only,
// as UCL's view).
type ModuleInstance struct {
	BDOID, ModBDOID, ModCode, ModName, DptBDOID, YearCode string
	Credits                                               string // a decimal number, e.g. "15", "7.5"
	LeaderUPI                                             string
	pg                                                    bool
	level                                                 int
	dept                                                  int
	prevBDOID                                             string // last year's instance, absent from the view
}

// Occurrence is a UCL_BDO_V_MOODLE_MODULE_STRUC row. Start and End are zero
// (NULL) for a few.
type Occurrence struct {
	BDOID, InstBDOID, ModCode, PSL, MAV, YearCode, Name string
	Start, End                                          time.Time
	inst                                                int
	year                                                int
}

// Registration is a UCL_BDO_V_MOODLE_STUDENT_ENRL row.
type Registration struct {
	StudentCode, OccBDOID, ModDptBDOID, RegStatus, SMOSMS, SPRCode string
	student, occ                                                   int
}

// Group is a CMIS_MOODLE_V_MODULE_GROUP row.
type Group struct {
	BDOID, OccBDOID, GroupID, Code, Name, ModCode, InstCode, SetID string
	Num, Capacity                                                  int
	occ                                                            int
}

// GroupMember is a CMIS_MOODLE_V_GROUP_MEMBER row; StudentCode is CMIS's
// 9-digit form.
type GroupMember struct {
	GroupBDOID, StudentCode, OccBDOID, SetID string
}

// GroupTutor is a CMIS_MOODLE_V_GROUP_TUTOR row.
type GroupTutor struct {
	GroupBDOID, StaffUPI, LecturerID string
}

// Mapping is one course mapping, as ctl.course_mapping holds it.
type Mapping struct {
	Instance       string   // Moodle site name
	CourseIDNumber string   // the Moodle course idnumber
	SISKind        string   // always "module_occurrence" here
	SISKey         string   // the occurrence's MOD_OCC_BDO_ID
	AcademicYear   string   // "" = any
	MinRegStatus   string   // CON, APP or NEW
	Roles          []string // MIM roles; {"student"}
	Active         bool
	GroupSync      bool
}

// CMISStudentCode is CMIS's form of a SITS student code: 9 digits, zero padded.
func CMISStudentCode(sits string) string { return "0" + sits }

// SITSStudentCode undoes CMISStudentCode: a 9-character code starting with
// '0' loses that zero; anything else is returned unchanged.
func SITSStudentCode(cmis string) string {
	if len(cmis) == 9 && cmis[0] == '0' {
		return cmis[1:]
	}
	return cmis
}

// SetID is the CMIS dataset of an academic year: LIVE-25-26 for 2025.
func SetID(year int) string { return fmt.Sprintf("LIVE-%02d-%02d", year%100, (year+1)%100) }

// CourseIDNumber is the Moodle course idnumber convention (docs/contracts.md §2,
// occ_key): <MOD_CODE>-<MAV_OCCUR>-<PSL_CODE with / -> _>-<AYR>.
func CourseIDNumber(modCode, mav, psl, ayr string) string {
	return strings.TrimSpace(modCode) + "-" + mav + "-" + strings.ReplaceAll(psl, "/", "_") + "-" + ayr
}

// Generate builds the institution. It is deterministic: the same options
// give the same institution, byte for byte.
func Generate(opts Options) (*Institution, error) {
	if opts.Scale == "" {
		opts.Scale = Small
	}
	sz, ok := sizes[opts.Scale]
	if !ok {
		return nil, fmt.Errorf("unknown scale %q (use small, medium or ucl)", opts.Scale)
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Year == 0 {
		opts.Year = 2025
	}
	if opts.Year < 2000 || opts.Year > 2098 {
		return nil, fmt.Errorf("year %d is not a plausible academic start year", opts.Year)
	}
	g := &gen{in: &Institution{Scale: opts.Scale, Seed: opts.Seed, Year: opts.Year}, sz: sz, seed: opts.Seed}
	g.reference()
	g.staffAndStudents()
	g.modules()
	g.registrations()
	g.cmis()
	g.moodle()
	g.in.Manifest = computeManifest(g.in)
	return g.in, nil
}

// gen carries the generator's state. Each part draws from its own random
// stream, so changing one part does not reshuffle the others.
type gen struct {
	in   *Institution
	sz   size
	seed uint64

	deptStaff     [][]int // staff indexes by department
	progsByLevel  map[byte][]int
	routesByProg  [][]int
	instsByDept   [][]int // current instances by department
	occsByInst    [][]int // current-year occurrences by instance
	prevOccByInst [][]int
	studentByCode map[string]int
}

func (g *gen) rng(stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(g.seed, 0x5157_4e54_0000_0000+stream))
}
