package synth

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// Moodle role ids of the standard set (the simulator's defaults).
const (
	roleEditingTeacher = 3
	roleStudent        = 5
)

// GroupPrefix is the idnumber prefix of the Moodle groups and groupings MIM
// owns (config moodle[].group_prefix's default); the planted MIM groups carry
// GroupPrefix + the CMIS group's GROUP_BDO_ID.
const GroupPrefix = "mim:"

// ProfileFields are the custom profile fields every simulated site defines:
// upi (filled from LDAP, as at UCL) and the fields MIM's profile feed owns.
var ProfileFields = []moodletest.ProfileField{
	{ShortName: "upi", Name: "UPI", Type: "text"},
	{ShortName: "studentno", Name: "Student number", Type: "text"},
	{ShortName: "progcode", Name: "Programme code", Type: "text"},
	{ShortName: "programme", Name: "Programme of study", Type: "text"},
	{ShortName: "ugpg", Name: "Undergraduate / Postgraduate", Type: "text"},
	{ShortName: "yearlevel", Name: "Year level", Type: "text"},
	{ShortName: "approvedmodules", Name: "Approved modules", Type: "textarea"},
	{ShortName: "preapprovalmodules", Name: "Pre-approval modules", Type: "textarea"},
}

// ProfileFieldNames are the shortnames of ProfileFields. The sites' accounts
// hold only upi values before MIM's first profile file, so a configuration
// declares the others (moodle[].known_profile_fields).
func ProfileFieldNames() []string {
	out := make([]string, len(ProfileFields))
	for i, f := range ProfileFields {
		out[i] = f.ShortName
	}
	return out
}

// plannedCourse is a Moodle course to be, before sites are built.
type plannedCourse struct {
	site      int
	occs      []int // occurrences mapped to it; the first gives the idnumber
	sandbox   bool
	deleted   bool // mapped, but the course no longer exists on the site
	groupSync bool
	minReg    string
}

// site builds one moodletest.State.
type site struct {
	spec       siteSpec
	st         *moodletest.State
	r          *rand.Rand
	nextUser   int64
	nextCourse int64
	nextGroup  int64
	nextGrpg   int64
	catByID    map[string]int64
	// accounts by idnumber and by staff UPI
	byIDNumber map[string][]int64
	staffUser  map[string]int64 // staff UPI -> user id
	enrolled   map[[2]int64]int // course, user -> index in Enrolments
	shortNames map[string]bool
	staleMade  bool // every site with group sync gets a stale MIM group
}

func (g *gen) moodle() {
	in, sz := g.in, g.sz
	r := g.rng(streamMoodle)
	mainSite, archiveSite := 0, -1
	siteOfFac := map[string]int{}
	for i, sp := range sz.sites {
		for _, f := range sp.faculties {
			if f == "*" {
				mainSite = i
			} else {
				siteOfFac[f] = i
			}
		}
		if sp.archive {
			archiveSite = i
		}
	}
	siteOfInst := func(inst int) int {
		fac := in.Departments[in.ModuleInstances[inst].dept].FacCode
		if s, ok := siteOfFac[fac]; ok {
			return s
		}
		return mainSite
	}

	// Plan the courses: about 62% current-year mapped courses, 30% last
	// year's on the archive site, 8% sandboxes without a mapping.
	var plans []plannedCourse
	nCur, nPrev := 0, 0
	for o := range in.Occurrences {
		if in.Occurrences[o].year == in.Year {
			nCur++
		} else {
			nPrev++
		}
	}
	// Most instances' main (campus) occurrence has a course; other
	// occurrences fill the rest of the current year's share.
	const combine = 0.15
	curCourses := 0.62 * float64(sz.courses)
	pMain := min(0.85, curCourses/float64(len(in.ModuleInstances)))
	pOther := max(0, (curCourses-pMain*float64(len(in.ModuleInstances)))/float64(nCur-len(in.ModuleInstances)))
	for inst := range in.ModuleInstances {
		occs := g.occsByInst[inst]
		for j := 0; j < len(occs); j++ {
			p := pOther
			if j == 0 {
				p = pMain
			}
			if !chance(r, p) {
				continue
			}
			pc := plannedCourse{site: siteOfInst(inst), occs: []int{occs[j]}, minReg: "APP"}
			if j+1 < len(occs) && chance(r, combine) {
				j++
				pc.occs = append(pc.occs, occs[j])
			}
			switch x := r.IntN(100); {
			case x < 7:
				pc.minReg = "CON"
			case x < 10:
				pc.minReg = "NEW"
			}
			plans = append(plans, pc)
		}
	}
	if archiveSite >= 0 {
		pPrev := min(1, 0.30*float64(sz.courses)/float64(nPrev))
		for inst := range in.ModuleInstances {
			for _, o := range g.prevOccByInst[inst] {
				if chance(r, pPrev) {
					plans = append(plans, plannedCourse{site: archiveSite, occs: []int{o}, minReg: "APP"})
				}
			}
		}
	}
	for k := 0; k < sz.courses*8/100; k++ {
		s := mainSite
		if chance(r, 0.3) {
			s = r.IntN(len(sz.sites))
		}
		plans = append(plans, plannedCourse{site: s, sandbox: true})
	}
	// CMIS groups by occurrence, for group sync.
	groupsByOcc := map[int][]int{}
	for gi := range in.Groups {
		groupsByOcc[in.Groups[gi].occ] = append(groupsByOcc[in.Groups[gi].occ], gi)
	}
	// Per current site: some mapped courses have group sync; a few mapped
	// courses no longer exist in Moodle (an "unknown course").
	perSite := make([][]int, len(sz.sites))
	for i := range plans {
		if !plans[i].sandbox {
			perSite[plans[i].site] = append(perSite[plans[i].site], i)
		}
	}
	for s, idx := range perSite {
		if s == archiveSite || len(idx) == 0 {
			continue
		}
		for _, i := range idx {
			hasGroups := slices.ContainsFunc(plans[i].occs, func(o int) bool { return len(groupsByOcc[o]) > 0 })
			plans[i].groupSync = hasGroups && chance(r, 0.2)
		}
		gone := max(1, len(idx)/200)
		for k := 0; k < gone; k++ {
			plans[idx[r.IntN(len(idx))]].deleted = true
		}
	}

	// Build the sites.
	regsByOcc := map[int][]int{}
	for i := range in.Registrations {
		regsByOcc[in.Registrations[i].occ] = append(regsByOcc[in.Registrations[i].occ], i)
	}
	membersByGroup := map[string][]string{}
	for _, m := range in.GroupMembers {
		membersByGroup[m.GroupBDOID] = append(membersByGroup[m.GroupBDOID], SITSStudentCode(m.StudentCode))
	}
	// A student has accounts on the sites of their own faculty and of the
	// modules they take; everyone has one on the main and archive sites.
	onSite := map[[2]int]bool{}
	for i := range in.Registrations {
		rg := &in.Registrations[i]
		onSite[[2]int{rg.student, siteOfInst(in.Occurrences[rg.occ].inst)}] = true
	}
	for si, spec := range sz.sites {
		b := g.newSite(si, spec)
		g.siteUsers(b, si == mainSite, func(s *Student) bool {
			if spec.archive || si == mainSite {
				return true
			}
			if f, ok := siteOfFac[in.Departments[s.dept].FacCode]; ok && f == si {
				return true
			}
			return onSite[[2]int{g.studentByCode[s.Code], si}]
		})
		for i := range plans {
			pc := &plans[i]
			if pc.site != si {
				continue
			}
			if pc.sandbox {
				g.sandboxCourse(b)
				continue
			}
			g.mappedCourse(b, pc, regsByOcc, groupsByOcc, membersByGroup)
		}
		in.Sites = append(in.Sites, Site{Name: spec.name, Archive: spec.archive, State: b.st})
	}
}

func (g *gen) newSite(si int, spec siteSpec) *site {
	b := &site{
		spec:       spec,
		r:          g.rng(streamMoodle + 1 + uint64(si)),
		nextUser:   3,
		nextCourse: 2,
		nextGroup:  1,
		nextGrpg:   1,
		catByID:    map[string]int64{},
		byIDNumber: map[string][]int64{},
		staffUser:  map[string]int64{},
		enrolled:   map[[2]int64]int{},
		shortNames: map[string]bool{},
		st: &moodletest.State{
			SiteName:      "Example University Moodle (" + spec.name + ")",
			ProfileFields: slices.Clone(ProfileFields),
			Categories:    []moodletest.Category{{ID: 1, Name: "Miscellaneous", Visible: true}},
			Users: []moodletest.User{
				{ID: 1, Username: "guest", FirstName: "Guest user", LastName: " ", Auth: "manual", Email: "root@localhost"},
				{ID: 2, Username: "admin", FirstName: "Admin", LastName: "User", Auth: "manual", Email: "moodle-admin@example.ac.uk"},
			},
		},
	}
	b.catByID[""] = 1
	return b
}

func (b *site) addUser(u moodletest.User) int64 {
	u.ID = b.nextUser
	b.nextUser++
	b.st.Users = append(b.st.Users, u)
	if u.IDNumber != "" {
		b.byIDNumber[u.IDNumber] = append(b.byIDNumber[u.IDNumber], u.ID)
	}
	return u.ID
}

// siteUsers creates the accounts: staff, then students. Most students have
// one account; some have none, and a few have two (the same idnumber twice,
// or a SAML-created account whose e-mail differs only in case and which has
// no idnumber).
func (g *gen) siteUsers(b *site, main bool, belongs func(*Student) bool) {
	in, r := g.in, b.r
	for i := range in.Staff {
		st := &in.Staff[i]
		if !main && !chance(r, 0.9) {
			continue
		}
		upi := st.UPI
		if chance(r, 0.1) {
			upi = strings.ToLower(upi) // LDAP sometimes delivers it lower-case
		}
		id := b.addUser(moodletest.User{Username: st.Username, FirstName: st.FirstName, LastName: st.Surname, Email: st.Email,
			IDNumber: st.ID, Auth: "ldap", Department: in.Departments[st.dept].Name, Institution: "Example University",
			CustomFields: map[string]string{"upi": upi}})
		b.staffUser[st.UPI] = id
	}
	dupA, dupB := 0, 0
	for i := range in.Students {
		s := &in.Students[i]
		if !belongs(s) {
			continue
		}
		has := 0.98
		switch {
		case b.spec.archive:
			has = 0.9
		case !s.Active():
			has = 0.8
		}
		if !chance(r, has) {
			continue
		}
		upi := s.UPI
		if chance(r, 0.1) {
			upi = strings.ToLower(upi)
		}
		first := s.FirstName
		if first == "" {
			first = "-" // Moodle requires a first name; LDAP fills a placeholder
		}
		u := moodletest.User{Username: s.Username, FirstName: first, LastName: s.Surname, Email: s.Email, IDNumber: s.Code,
			Auth: "ldap", Department: in.Departments[s.dept].Name, Institution: "Example University",
			Suspended: !s.Active() && chance(r, 0.3), CustomFields: map[string]string{"upi": upi}}
		b.addUser(u)
		switch {
		case main && dupA < g.sz.quirks || chance(r, 0.003):
			// An account made by hand with the same idnumber.
			dupA++
			d := u
			d.Username, d.Auth, d.Suspended = s.Username+"-old", "manual", false
			d.CustomFields = map[string]string{"upi": s.UPI}
			b.addUser(d)
		case s.Email != "" && (main && dupB < g.sz.quirks || chance(r, 0.003)):
			// A SAML login that created a second account: username is the
			// eppn, the e-mail differs only in case, no idnumber.
			dupB++
			d := u
			d.Username, d.Auth, d.IDNumber, d.Suspended = s.Username+"@example.ac.uk", "saml2", "", false
			d.Email = strings.ToUpper(s.Email[:1]) + s.Email[1:]
			if d.Email == s.Email {
				d.Email = strings.ToUpper(s.Email)
			}
			d.CustomFields = map[string]string{}
			b.addUser(d)
		}
	}
}

// category returns the id of the category for a course of instance inst in
// year, creating the faculty > department > subject chain on first use.
func (g *gen) category(b *site, inst int, year int) int64 {
	in := g.in
	mi := &in.ModuleInstances[inst]
	d := &in.Departments[mi.dept]
	fac := d.FacCode
	if fac == "" {
		fac = "MISC"
	}
	stem := strings.TrimRight(mi.ModCode, "0123456789")
	y := strconv.Itoa(year)
	chain := []struct{ idn, name string }{
		{y + "_" + fac, fmt.Sprintf("[%s %s] %s", fac, y, facultyName(in, fac))},
		{y + "_" + fac + "_" + d.Code, fmt.Sprintf("[%s_%s %s] %s", d.Code, fac, y, d.Name)},
		{y + "_" + fac + "_" + d.Code + "_" + stem, fmt.Sprintf("[%s %s] %s", stem, y, stem)},
	}
	parent := int64(0)
	for _, c := range chain {
		id, ok := b.catByID[c.idn]
		if !ok {
			id = int64(len(b.st.Categories) + 1)
			b.st.Categories = append(b.st.Categories, moodletest.Category{ID: id, Name: c.name, IDNumber: c.idn, Parent: parent, Visible: true})
			b.catByID[c.idn] = id
		}
		parent = id
	}
	return parent
}

func facultyName(in *Institution, code string) string {
	for _, f := range in.Faculties {
		if f.Code == code {
			return f.Name
		}
	}
	return "No faculty"
}

// enrol adds an enrolment. The incumbent's enrolments carry no dates
// (start 0): whether Moodle reports one as active then depends only on its
// status, never on the day the synthetic site is read, so the planted drift
// holds whatever the date.
func (b *site) enrol(course, user int64, role int64, method string, suspended bool, start int64) {
	if _, dup := b.enrolled[[2]int64{course, user}]; dup {
		return
	}
	b.enrolled[[2]int64{course, user}] = len(b.st.Enrolments)
	b.st.Enrolments = append(b.st.Enrolments, moodletest.Enrolment{CourseID: course, UserID: user, RoleIDs: []int64{role},
		Method: method, Suspended: suspended, TimeStart: start})
}

func (g *gen) sandboxCourse(b *site) {
	r := b.r
	id := b.nextCourse
	b.nextCourse++
	sandbox, ok := b.catByID["SANDBOX"]
	if !ok {
		sandbox = int64(len(b.st.Categories) + 1)
		b.st.Categories = append(b.st.Categories, moodletest.Category{ID: sandbox, Name: "Sandbox", IDNumber: "SANDBOX", Visible: false})
		b.catByID["SANDBOX"] = sandbox
	}
	c := moodletest.Course{ID: id, ShortName: fmt.Sprintf("SANDBOX-%s-%d", b.spec.name, id), FullName: "Sandbox " + strconv.FormatInt(id, 10),
		CategoryID: sandbox, Format: "topics"}
	if chance(r, 0.3) {
		c.IDNumber = fmt.Sprintf("SANDBOX-%d", id)
	}
	b.st.Courses = append(b.st.Courses, c)
	if len(g.in.Staff) > 0 {
		st := g.in.Staff[r.IntN(len(g.in.Staff))]
		if u, ok := b.staffUser[st.UPI]; ok {
			b.enrol(id, u, roleEditingTeacher, "manual", false, 0)
		}
	}
	// A few students, the SAML duplicates among them, enrolled themselves.
	users := b.st.Users
	for k := r.IntN(6); k > 0 && len(users) > 3; k-- {
		u := users[2+r.IntN(len(users)-2)]
		if u.IDNumber == "" || !strings.HasPrefix(u.IDNumber, "S") {
			b.enrol(id, u.ID, roleStudent, "self", false, 0)
		}
	}
}

// eligible is the Manifest's rule for a registration that a mapping with
// minimum status minReg turns into a target enrolment.
func eligible(in *Institution, rg *Registration, minReg string) bool {
	return regLevel[rg.RegStatus] >= regLevel[minReg] && regLevel[rg.RegStatus] > 0 && in.Students[rg.student].Active()
}

func (g *gen) mappedCourse(b *site, pc *plannedCourse, regsByOcc map[int][]int, groupsByOcc map[int][]int, membersByGroup map[string][]string) {
	in, r := g.in, b.r
	first := &in.Occurrences[pc.occs[0]]
	idn := CourseIDNumber(first.ModCode, first.MAV, first.PSL, first.YearCode)
	for _, o := range pc.occs {
		in.Mappings = append(in.Mappings, Mapping{Instance: b.spec.name, CourseIDNumber: idn, SISKind: "module_occurrence",
			SISKey: in.Occurrences[o].BDOID, MinRegStatus: pc.minReg, Roles: []string{"student"}, Active: !b.spec.archive,
			GroupSync: pc.groupSync})
	}
	if pc.deleted {
		return
	}
	id := b.nextCourse
	b.nextCourse++
	yy := first.year % 100
	short := fmt.Sprintf("%s_%02d-%02d", first.ModCode, yy, (yy+1)%100)
	if b.shortNames[short] {
		short = fmt.Sprintf("%s_%s_%s_%02d-%02d", first.ModCode, first.MAV, first.PSL, yy, (yy+1)%100)
	}
	b.shortNames[short] = true
	c := moodletest.Course{ID: id, ShortName: short, IDNumber: idn, CategoryID: g.category(b, first.inst, first.year), Format: "topics",
		FullName: fmt.Sprintf("%s: %s (%d/%02d)", first.ModCode, first.Name, first.year, (first.year+1)%100), Visible: !b.spec.archive}
	if !first.Start.IsZero() {
		c.StartDate, c.EndDate = first.Start.Unix(), first.End.Unix()
	}
	b.st.Courses = append(b.st.Courses, c)

	// The module leader teaches it.
	if up := in.ModuleInstances[first.inst].LeaderUPI; up != "" {
		if u, ok := b.staffUser[up]; ok {
			b.enrol(id, u, roleEditingTeacher, "manual", false, 0)
		}
	}
	if b.spec.archive {
		// Last year's course: whoever was on it then; not compared with SITS
		// (the mapping is inactive after rollover).
		for k := 10 + r.IntN(21); k > 0; k-- {
			u := b.st.Users[2+r.IntN(len(b.st.Users)-2)]
			if u.IDNumber != "" && !strings.HasPrefix(u.IDNumber, "S") {
				b.enrol(id, u.ID, roleStudent, "imsenterprise", chance(r, 0.1), 0)
			}
		}
		return
	}
	// Target students, then the drift planted against them.
	targeted := map[string]bool{}
	var order []string
	for _, o := range pc.occs {
		for _, ri := range regsByOcc[o] {
			rg := &in.Registrations[ri]
			if eligible(in, rg, pc.minReg) && !targeted[rg.StudentCode] {
				targeted[rg.StudentCode] = true
				order = append(order, rg.StudentCode)
			}
		}
	}
	for _, code := range order {
		accts := b.byIDNumber[code]
		if len(accts) == 0 {
			continue // no account: an "unknown user" for the export
		}
		switch x := r.Float64(); {
		case x < 0.02: // missing
		case x < 0.04:
			b.enrol(id, accts[0], roleStudent, "imsenterprise", true, 0) // suspended, should be active
		default:
			b.enrol(id, accts[0], roleStudent, "imsenterprise", false, 0)
		}
	}
	// Extra: students SITS no longer puts on the course (rejected, left,
	// below the mapping's status) still enrolled, and now and then someone
	// never registered at all.
	for _, o := range pc.occs {
		for _, ri := range regsByOcc[o] {
			rg := &in.Registrations[ri]
			if targeted[rg.StudentCode] || !chance(r, 0.5) {
				continue
			}
			if accts := b.byIDNumber[rg.StudentCode]; len(accts) > 0 {
				b.enrol(id, accts[0], roleStudent, "imsenterprise", false, 0)
			}
		}
	}
	if chance(r, 0.05) {
		s := in.Students[r.IntN(len(in.Students))]
		if accts := b.byIDNumber[s.Code]; len(accts) > 0 && !targeted[s.Code] {
			b.enrol(id, accts[0], roleStudent, "manual", false, 0)
		}
	}
	enrolledUser := func(code string) (int64, bool) {
		for _, u := range b.byIDNumber[code] {
			if _, ok := b.enrolled[[2]int64{id, u}]; ok {
				return u, true
			}
		}
		return 0, false
	}
	// Groups: those MIM made on earlier runs (idnumber with its prefix),
	// drifted a little from CMIS; stale ones whose CMIS group is gone; and
	// groups teachers made by hand.
	if pc.groupSync {
		var courseGroups []int
		for _, o := range pc.occs {
			courseGroups = append(courseGroups, groupsByOcc[o]...)
		}
		names := groupNames(in.Groups, courseGroups)
		for _, o := range pc.occs {
			for _, gi := range groupsByOcc[o] {
				if !chance(r, 0.6) {
					continue
				}
				grp := &in.Groups[gi]
				var members []int64
				for _, code := range membersByGroup[grp.BDOID] {
					if u, ok := enrolledUser(code); ok && !chance(r, 0.05) {
						members = append(members, u)
					}
				}
				if chance(r, 0.03) {
					for _, code := range order {
						if u, ok := enrolledUser(code); ok && !slices.Contains(members, u) {
							members = append(members, u)
							break
						}
					}
				}
				b.addGroup(id, names[gi], GroupPrefix+grp.BDOID, members, true)
			}
		}
		if !b.staleMade || chance(r, 0.1) {
			b.staleMade = true
			var members []int64
			for _, code := range order[:min(2, len(order))] {
				if u, ok := enrolledUser(code); ok {
					members = append(members, u)
				}
			}
			b.addGroup(id, "OLD1", GroupPrefix+fmt.Sprintf("%032X", r.Uint64()), members, true)
		}
	}
	if chance(r, 0.1) {
		var members []int64
		for _, code := range order {
			if u, ok := enrolledUser(code); ok && chance(r, 0.3) {
				members = append(members, u)
			}
		}
		idn := ""
		if chance(r, 0.3) {
			idn = "teacher-" + strconv.FormatInt(id, 10)
		}
		b.addGroup(id, "Lab team A", idn, members, false)
	}
}

// groupNames names the CMIS groups of one course as mart.exp_group_target
// does, so the groups MIM made on earlier runs carry the names group sync
// expects: the group code; "<MOD_CODE> <code>" where several modules of the
// course share the code; "<code> <INST_CODE>" where occurrences of one
// module do. Moodle refuses two groups of one name in a course.
func groupNames(groups []Group, course []int) map[int]string {
	sameCode := map[string]int{}
	sameModuleCode := map[[2]string]int{}
	for _, gi := range course {
		g := &groups[gi]
		sameCode[g.Code]++
		sameModuleCode[[2]string{g.ModCode, g.Code}]++
	}
	names := make(map[int]string, len(course))
	for _, gi := range course {
		g := &groups[gi]
		switch {
		case sameCode[g.Code] == 1:
			names[gi] = g.Code
		case sameModuleCode[[2]string{g.ModCode, g.Code}] == 1 && g.ModCode != "":
			names[gi] = g.ModCode + " " + g.Code
		default:
			names[gi] = g.Code + " " + g.InstCode
		}
	}
	return names
}

func (b *site) addGroup(course int64, name, idnumber string, members []int64, withGrouping bool) {
	gid := b.nextGroup
	b.nextGroup++
	b.st.Groups = append(b.st.Groups, moodletest.Group{ID: gid, CourseID: course, Name: name, IDNumber: idnumber, Members: members})
	if withGrouping {
		b.st.Groupings = append(b.st.Groupings, moodletest.Grouping{ID: b.nextGrpg, CourseID: course, Name: name, IDNumber: idnumber, Groups: []int64{gid}})
		b.nextGrpg++
	}
}
