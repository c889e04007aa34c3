package e2e_test

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/synth"
)

// mappingRow is a course mapping a test adds.
type mappingRow struct {
	course, kind, key, year, section, courseYear, minReg string
	roles                                                []string
	groupSync                                            bool
}

func (w *world) addMapping(t *testing.T, site string, m mappingRow) {
	t.Helper()
	if m.minReg == "" {
		m.minReg = "APP"
	}
	if m.roles == nil {
		m.roles = []string{"student"}
	}
	if _, err := w.DB.Pool.Exec(context.Background(), `INSERT INTO ctl.course_mapping (instance, course_idnumber, sis_kind, sis_key,
		academic_year, section, course_year, min_reg_status, roles, group_sync, origin, created_by, updated_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'manual', 'e2e', 'e2e')`,
		site, m.course, m.kind, m.key, m.year, m.section, m.courseYear, m.minReg, m.roles, m.groupSync); err != nil {
		t.Fatal(err)
	}
}

func (w *world) deactivate(t *testing.T, site, course string) {
	t.Helper()
	if _, err := w.DB.Pool.Exec(context.Background(), `UPDATE ctl.course_mapping SET active = false WHERE instance = $1 AND course_idnumber = $2`, site, course); err != nil {
		t.Fatal(err)
	}
}

// set returns the first column of a query's rows as a set.
func set(t *testing.T, w *world, sql string, args ...any) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, r := range rows(t, w.DB.Pool, sql, args...) {
		out[strings.Join(r, " ")] = true
	}
	return out
}

func yearOfStudy(courseYear string) string {
	return strings.TrimRightFunc(courseYear, func(r rune) bool { return r < '0' || r > '9' })
}

// Every mapping kind, staff roles, the year filters and inactive mappings,
// on the small institution's main site: courses that synth mapped get other
// mappings, and each course's target must be exactly the set the oracle
// computes from the generated SITS and CMIS rows.
func TestMappingKindsAndRoles(t *testing.T) {
	w := newWorld(t, synth.Options{Scale: synth.Small})
	w.extract(t)
	w.mapAndSet(t)
	o := newOracle(w.In)
	site := w.In.Sites[0].Name
	st := o.site(site)
	courseID := map[string]int64{}
	for _, c := range st.Courses {
		if c.IDNumber != "" {
			courseID[c.IDNumber] = c.ID
		}
	}
	// Courses synth mapped on the main site that exist there, in order.
	var courses []string
	synthMappings := map[string][]synth.Mapping{}
	for _, m := range w.In.Mappings {
		if m.Instance != site || !m.Active {
			continue
		}
		if _, ok := courseID[m.CourseIDNumber]; !ok {
			continue
		}
		if synthMappings[m.CourseIDNumber] == nil {
			courses = append(courses, m.CourseIDNumber)
		}
		synthMappings[m.CourseIDNumber] = append(synthMappings[m.CourseIDNumber], m)
	}
	if len(courses) < 9 {
		t.Fatalf("only %d mapped courses", len(courses))
	}
	year := strconv.Itoa(w.In.Year)
	active := func(code string) bool { return o.active(code) }

	// Programme, year 1: the programme with the most such students.
	best := func(key func(synth.Assignment) (string, bool)) (string, map[string]bool) {
		per := map[string]map[string]bool{}
		for _, a := range w.In.Assignments {
			if k, ok := key(a); ok && active(a.StudentCode) {
				if per[k] == nil {
					per[k] = map[string]bool{}
				}
				per[k][a.StudentCode] = true
			}
		}
		keys := slices.Sorted(maps.Keys(per))
		top := slices.MaxFunc(keys, func(a, b string) int { return len(per[a]) - len(per[b]) })
		return top, per[top]
	}
	// Of the programmes that also have students in other years, so that
	// the year filter has someone to leave out.
	mixed := map[string]bool{}
	for _, a := range w.In.Assignments {
		if active(a.StudentCode) && yearOfStudy(a.CourseYear) != "1" {
			mixed[a.ProgCode] = true
		}
	}
	prog, wantProg := best(func(a synth.Assignment) (string, bool) {
		return a.ProgCode, mixed[a.ProgCode] && yearOfStudy(a.CourseYear) == "1"
	})
	dept, wantDept := best(func(a synth.Assignment) (string, bool) { return a.DptBDOID, a.PostUndergrad == "P" && a.DptBDOID != "" })
	fac, wantFac := best(func(a synth.Assignment) (string, bool) { return a.FacCode, a.FacCode != "" })
	route, wantRoute := best(func(a synth.Assignment) (string, bool) { return a.RouteCode, true })

	// Section: a module code and MAV_OCCUR of this year, minimum status NEW.
	var secMod, secMAV string
	wantSection := map[string]bool{}
	for _, oc := range w.In.Occurrences {
		if oc.YearCode == year && len(o.admitted(oc.BDOID, "NEW")) > 3 {
			secMod, secMAV = strings.TrimSpace(oc.ModCode), oc.MAV
			break
		}
	}
	for _, oc := range w.In.Occurrences {
		if oc.YearCode == year && strings.TrimSpace(oc.ModCode) == secMod && oc.MAV == secMAV {
			for _, code := range o.admitted(oc.BDOID, "NEW") {
				wantSection[code] = true
			}
		}
	}

	// Two occurrences with different dates that share a student, mapped to
	// one course by occ_key: the timeframe spans both.
	var pair []synth.Mapping
	occKey := func(oc *synth.Occurrence) string {
		return synth.CourseIDNumber(oc.ModCode, oc.MAV, oc.PSL, oc.YearCode)
	}
search:
	for i := range w.In.Occurrences {
		a := &w.In.Occurrences[i]
		if a.YearCode != year || a.Start.IsZero() {
			continue
		}
		for j := range w.In.Occurrences {
			b := &w.In.Occurrences[j]
			if b.YearCode != year || b.Start.IsZero() || b.End.IsZero() || !a.Start.Before(b.Start) || !a.End.Before(b.End) {
				continue
			}
			for _, s := range o.admitted(a.BDOID, "APP") {
				if slices.Contains(o.admitted(b.BDOID, "APP"), s) {
					pair = []synth.Mapping{
						{Instance: site, CourseIDNumber: courses[6], SISKind: "module_occurrence", SISKey: a.BDOID, MinRegStatus: "APP", Active: true},
						{Instance: site, CourseIDNumber: courses[6], SISKind: "module_occurrence", SISKey: b.BDOID, MinRegStatus: "APP", Active: true},
					}
					break search
				}
			}
		}
	}
	if pair == nil {
		t.Fatal("no two occurrences share a student")
	}

	for _, c := range []string{courses[0], courses[1], courses[2], courses[3], courses[4], courses[6], courses[7]} {
		w.deactivate(t, site, c)
	}
	w.addMapping(t, site, mappingRow{course: courses[0], kind: "programme", key: prog, courseYear: "1"})
	w.addMapping(t, site, mappingRow{course: courses[1], kind: "department", key: dept, courseYear: "P"})
	w.addMapping(t, site, mappingRow{course: courses[2], kind: "faculty", key: fac})
	w.addMapping(t, site, mappingRow{course: courses[3], kind: "route", key: route})
	w.addMapping(t, site, mappingRow{course: courses[4], kind: "section", key: secMod, section: secMAV, minReg: "NEW"})
	if _, err := w.DB.Pool.Exec(context.Background(), `UPDATE ctl.course_mapping SET roles = '{student,editingteacher,teacher}'
		WHERE instance = $1 AND course_idnumber = $2`, site, courses[5]); err != nil {
		t.Fatal(err)
	}
	for _, m := range pair {
		w.addMapping(t, site, mappingRow{course: courses[6], kind: "module_occurrence", key: occKey(o.occ[m.SISKey])})
	}
	lastYear := strconv.Itoa(w.In.Year - 1)
	w.addMapping(t, site, mappingRow{course: courses[7], kind: "module_occurrence", key: occKey(o.occ[synthMappings[courses[7]][0].SISKey]), year: lastYear})

	if _, err := w.Transform(t, project(t)); err != nil {
		t.Fatal(err)
	}
	students := func(course string) map[string]bool {
		return set(t, w, `SELECT person_code FROM mart.fct_enrolment_target WHERE instance = $1 AND course_idnumber = $2 AND role = 'student'`, site, course)
	}
	for _, c := range []struct {
		what, course string
		want         map[string]bool
	}{
		{"programme " + prog + " year 1", courses[0], wantProg},
		{"department " + dept + " postgraduates", courses[1], wantDept},
		{"faculty " + fac, courses[2], wantFac},
		{"route " + route, courses[3], wantRoute},
		{"section " + secMod + " " + secMAV + " from NEW", courses[4], wantSection},
	} {
		if len(c.want) == 0 {
			t.Errorf("%s: nobody to expect; the comparison proves nothing", c.what)
		}
		diff(t, c.what, c.want, students(c.course))
	}

	// The pair of occurrences: students of either, the timeframe spanning both.
	want := map[string]frame{}
	for code, f := range o.moduleTarget(site, pair, w.In.Year)[courses[6]] {
		want[code] = f
	}
	got := map[string]frame{}
	for _, r := range rows(t, w.DB.Pool, `SELECT person_code, coalesce(timeframe_begin::text, 'NULL'), coalesce(timeframe_end::text, 'NULL')
		FROM mart.fct_enrolment_target WHERE instance = $1 AND course_idnumber = $2`, site, courses[6]) {
		got[r[0]] = frame{r[1], r[2]}
	}
	diff(t, "two occurrences by occ_key", want, got)
	spanning := 0
	for _, f := range got {
		if f.begin == o.occ[pair[0].SISKey].Start.Format("2006-01-02") && f.end == o.occ[pair[1].SISKey].End.Format("2006-01-02") {
			spanning++
		}
	}
	if spanning == 0 {
		t.Errorf("no student's timeframe spans both occurrences: %v", got)
	}

	// Last year's occurrence under this year's limit: nobody, and the
	// mapping is reported; every student enrolment of its course is extra.
	if n := len(students(courses[7])); n != 0 {
		t.Errorf("a %s mapping of a %s occurrence gave %d students", lastYear, year, n)
	}
	if got := set(t, w, `SELECT problem FROM mart.dq_mapping_unresolved WHERE instance = $1 AND course_idnumber = $2`, site, courses[7]); !got["no occurrence of the academic year (the mapping's, or min_mod_occ_year on)"] {
		t.Errorf("dq_mapping_unresolved for %s: %v", courses[7], got)
	}
	extra := 0
	for _, e := range st.Enrolments {
		if e.CourseID == courseID[courses[7]] && slices.Contains(e.RoleIDs, 5) {
			extra++
		}
	}
	if n := count(t, w.DB.Pool, `SELECT count(*) FROM mart.enrolment_drift WHERE instance = $1 AND course_idnumber = $2 AND kind = 'extra'`, site, courses[7]); n != extra || n == 0 {
		t.Errorf("%s: %d extra enrolments in the drift, want %d", courses[7], n, extra)
	}

	// Staff: the module leaders as editingteacher, the CMIS group tutors as
	// teacher, found by UPI; IMS roletypes 02 and 08; missing ones drift.
	_, byUPI := accounts(st)
	byIDNumber, _ := accounts(st)
	leaders, tutors := map[string]bool{}, map[string]bool{}
	occs := map[string]bool{}
	for _, m := range synthMappings[courses[5]] {
		occs[m.SISKey] = true
		if up := o.inst[o.occ[m.SISKey].InstBDOID].LeaderUPI; up != "" {
			leaders[strings.ToUpper(up)] = true
		}
	}
	groupOcc := map[string]string{}
	for _, g := range w.In.Groups {
		groupOcc[g.BDOID] = g.OccBDOID
	}
	for _, gt := range w.In.GroupTutors {
		if occs[groupOcc[gt.GroupBDOID]] {
			tutors[strings.ToUpper(gt.StaffUPI)] = true
		}
	}
	if len(leaders) == 0 || len(tutors) == 0 {
		t.Fatalf("course %s has %d leaders and %d tutors; pick another", courses[5], len(leaders), len(tutors))
	}
	holds := func(userID int64, role int64) bool {
		for _, e := range st.Enrolments {
			if e.CourseID == courseID[courses[5]] && e.UserID == userID && slices.Contains(e.RoleIDs, role) {
				return true
			}
		}
		return false
	}
	for _, r := range []struct {
		role     string
		roleID   int64
		roletype string
		upis     map[string]bool
	}{{"editingteacher", 3, "02", leaders}, {"teacher", 4, "08", tutors}} {
		wantRows, wantIMS, wantDrift := map[string]bool{}, map[string]bool{}, map[string]bool{}
		for upi := range r.upis {
			us := byUPI[upi]
			status := "none"
			switch {
			case len(us) > 1:
				status = "several"
			case len(us) == 1 && us[0].IDNumber == "":
				status = "no_idnumber"
			case len(us) == 1 && len(byIDNumber[us[0].IDNumber]) > 1:
				status = "several"
			case len(us) == 1:
				status = "one"
			}
			wantRows[upi+" "+status] = true
			switch status {
			case "one":
				wantIMS[us[0].IDNumber+" "+r.roletype] = true
				if !holds(us[0].ID, r.roleID) {
					wantDrift[upi+" missing"] = true
				}
			case "none", "no_idnumber":
				wantDrift[upi+" unknown_user"] = true
			case "several":
				wantDrift[upi+" ambiguous_user"] = true
			}
		}
		diff(t, courses[5]+" "+r.role+" target", wantRows, set(t, w, `SELECT person_code, user_status FROM mart.fct_enrolment_target
			WHERE instance = $1 AND course_idnumber = $2 AND role = $3 AND person_kind = 'staff'`, site, courses[5], r.role))
		diff(t, courses[5]+" "+r.role+" IMS", wantIMS, set(t, w, `SELECT user_idnumber, roletype FROM mart.exp_ims_membership
			WHERE instance = $1 AND course_idnumber = $2 AND role = $3`, site, courses[5], r.role))
		diff(t, courses[5]+" "+r.role+" drift", wantDrift, set(t, w, `SELECT person_code, kind FROM mart.enrolment_drift
			WHERE instance = $1 AND course_idnumber = $2 AND role = $3`, site, courses[5], r.role))
	}

	// The configuration decides the roletypes: without editingteacher in
	// exports.ims_roles its rows leave the feed and the mapping is reported.
	w.Cfg.Exports.IMSRoles = map[string]string{"student": "01", "teacher": "06"}
	if _, err := w.Transform(t, project(t)); err != nil {
		t.Fatal(err)
	}
	if got := set(t, w, `SELECT DISTINCT roletype FROM mart.exp_ims_membership WHERE instance = $1 AND course_idnumber = $2`, site, courses[5]); !maps.Equal(got, map[string]bool{"01": true, "06": true}) {
		t.Errorf("roletypes with editingteacher unmapped and teacher 06: %v", got)
	}
	if got := set(t, w, `SELECT role, problem FROM mart.dq_mapping_role WHERE instance = $1 AND course_idnumber = $2`, site, courses[5]); !got["editingteacher no IMS roletype (exports.ims_roles)"] || len(got) != 1 {
		t.Errorf("dq_mapping_role: %v", got)
	}
}

// Group names: a course fed by two occurrences of one module and by a
// second module, whose CMIS groups share codes, gets names by the rule of
// mart.exp_group_target: GROUP_CODE when unique in the course, else
// "<MOD_CODE> <GROUP_CODE>" when that is, else "<GROUP_CODE> <INST_CODE>".
func TestGroupNamesStayUniqueInACourse(t *testing.T) {
	w := newWorld(t, synth.Options{Scale: synth.Small})
	w.extract(t)
	w.mapAndSet(t)
	site := w.In.Sites[0].Name
	year := strconv.Itoa(w.In.Year)
	o := newOracle(w.In)
	codes := map[string]map[string]bool{} // occurrence -> group codes
	for _, g := range w.In.Groups {
		if codes[g.OccBDOID] == nil {
			codes[g.OccBDOID] = map[string]bool{}
		}
		codes[g.OccBDOID][g.Code] = true
	}
	shares := func(a, b string) bool {
		for c := range codes[a] {
			if codes[b][c] {
				return true
			}
		}
		return false
	}
	// o1, o2: one module, two occurrences sharing a code; o3: another module sharing one.
	var o1, o2, o3 string
	occs := slices.Sorted(maps.Keys(codes))
find:
	for _, a := range occs {
		for _, b := range occs {
			if a >= b || o.occ[a].ModCode != o.occ[b].ModCode || o.occ[a].YearCode != year || o.occ[b].YearCode != year || !shares(a, b) {
				continue
			}
			for _, c := range occs {
				if o.occ[c].ModCode != o.occ[a].ModCode && o.occ[c].YearCode == year && shares(a, c) {
					o1, o2, o3 = a, b, c
					break find
				}
			}
		}
	}
	if o3 == "" {
		t.Fatal("the small institution has no two occurrences of a module with shared group codes")
	}
	var course string
	for _, m := range w.In.Mappings {
		if m.Instance == site && m.Active && !m.GroupSync {
			if _, ok := w.Sites[site].CourseByIDNumber(m.CourseIDNumber); ok {
				course = m.CourseIDNumber
				break
			}
		}
	}
	w.deactivate(t, site, course)
	for _, occ := range []string{o1, o2, o3} {
		w.addMapping(t, site, mappingRow{course: course, kind: "module_occurrence", key: occ, groupSync: true})
	}
	if _, err := w.Transform(t, project(t)); err != nil {
		t.Fatal(err)
	}
	type grp struct{ bdo, code, mod, inst string }
	var gs []grp
	for _, g := range w.In.Groups {
		if g.OccBDOID == o1 || g.OccBDOID == o2 || g.OccBDOID == o3 {
			gs = append(gs, grp{g.BDOID, g.Code, g.ModCode, g.InstCode})
		}
	}
	want := map[string]string{}
	rules := map[string]bool{}
	for _, g := range gs {
		sameCode, sameModCode := 0, 0
		for _, h := range gs {
			if h.code == g.code {
				sameCode++
				if h.mod == g.mod {
					sameModCode++
				}
			}
		}
		switch {
		case sameCode == 1:
			want["mim:"+g.bdo], rules["code"] = g.code, true
		case sameModCode == 1:
			want["mim:"+g.bdo], rules["module and code"] = g.mod+" "+g.code, true
		default:
			want["mim:"+g.bdo], rules["code and instance"] = g.code+" "+g.inst, true
		}
	}
	got := map[string]string{}
	for _, r := range rows(t, w.DB.Pool, `SELECT DISTINCT group_idnumber, group_name FROM mart.exp_group_target WHERE instance = $1 AND course_idnumber = $2`, site, course) {
		got[r[0]] = r[1]
	}
	diff(t, course+" group names", want, got)
	names := map[string]bool{}
	for _, n := range got {
		if names[n] {
			t.Errorf("two groups of %s are named %q", course, n)
		}
		names[n] = true
	}
	if len(rules) < 3 {
		t.Errorf("the groups exercise only %v of the naming rule", slices.Sorted(maps.Keys(rules)))
	}
}
