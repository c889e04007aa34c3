package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Random streams, one per part of the institution.
const (
	streamReference = iota + 1
	streamPeople
	streamModules
	streamRegistrations
	streamCMIS
	streamMoodle // + site index
)

func (g *gen) reference() {
	r := g.rng(streamReference)
	in, sz := g.in, g.sz
	for _, f := range facultyList[:sz.faculties] {
		in.Faculties = append(in.Faculties, Faculty{Code: f.code, Name: f.name})
	}
	deptIDs := newGUIDs(r)
	usedCodes, usedStems := map[string]bool{}, map[string]bool{}
	for i := 0; i < sz.departments; i++ {
		name := subjects[i%len(subjects)]
		if i >= len(subjects) {
			name = "Institute of " + name
		}
		code := unique(usedCodes, func() string {
			c := codeFrom(name, 5)
			if usedCodes[c] {
				c = c[:3] + letters(r, 2, upper)
			}
			return c
		})
		// Every faculty gets departments; the rest are spread at random.
		fac := in.Faculties[i%len(in.Faculties)].Code
		if i >= len(in.Faculties) {
			fac = in.Faculties[r.IntN(len(in.Faculties))].Code
		}
		d := Department{BDOID: deptIDs.next(), Code: code, Name: name, FacCode: fac}
		stems := 1 + r.IntN(3)
		if sz.departments < 20 {
			stems = 2
		}
		for s := 0; s < stems; s++ {
			d.stems = append(d.stems, unique(usedStems, func() string {
				st := codeFrom(name, 4)
				if usedStems[st] || s > 0 {
					st = st[:2] + letters(r, 2, upper)
				}
				return st
			}))
		}
		in.Departments = append(in.Departments, d)
	}
	// Quirks: departments without a faculty, and departments whose BDO id is
	// empty (UCL's dump defaults it to ''), never the same department, and
	// never the only department of a faculty.
	var eligible []int
	for i := len(in.Faculties); i < len(in.Departments); i++ {
		eligible = append(eligible, i)
	}
	r.Shuffle(len(eligible), func(a, b int) { eligible[a], eligible[b] = eligible[b], eligible[a] })
	for q := 0; q < sz.quirks && 2*q+1 < len(eligible); q++ {
		in.Departments[eligible[2*q]].FacCode = ""
		in.Departments[eligible[2*q+1]].BDOID = ""
	}

	// Programmes: a level letter, an award, a subject stem, a sequence.
	awards := map[byte][]struct{ code, label string }{
		'U': {{"BA", "BA"}, {"BSC", "BSc"}, {"MENG", "MEng"}, {"MSCI", "MSci"}, {"LLB", "LLB"}},
		'T': {{"MA", "MA"}, {"MSC", "MSc"}, {"MRES", "MRes"}, {"LLM", "LLM"}, {"PGDIP", "PG Dip"}},
		'R': {{"PHD", "PhD"}, {"MPHIL", "MPhil"}},
	}
	g.progsByLevel = map[byte][]int{}
	usedProg := map[string]bool{}
	for i := 0; i < sz.programmes; i++ {
		dept := i % len(in.Departments)
		if i >= len(in.Departments) {
			dept = r.IntN(len(in.Departments))
		}
		d := &in.Departments[dept]
		level := byte('U')
		switch x := r.IntN(100); {
		case x >= 93:
			level = 'R'
		case x >= 55:
			level = 'T'
		}
		aw := awards[level][r.IntN(len(awards[level]))]
		stem := d.stems[r.IntN(len(d.stems))]
		base := (string(level) + aw.code + stem + "XXXXXXXXXX")[:10]
		seq := 1
		code := unique(usedProg, func() string {
			c := fmt.Sprintf("%s%02d", base, seq)
			seq++
			return c
		})
		name := aw.label + " " + d.Name
		if seq > 2 {
			name += " (" + topicWords[r.IntN(len(topicWords))] + ")"
		}
		ioe := "N"
		if d.FacCode == "EDU" && chance(r, 0.3) {
			ioe = "Y"
		}
		in.Programmes = append(in.Programmes, Programme{Code: code, Name: name, DptBDOID: d.BDOID, IOESessions: ioe, level: level, dept: dept})
		g.progsByLevel[level] = append(g.progsByLevel[level], len(in.Programmes)-1)
	}
	// Joint programmes: a few appear under a second department too.
	primary := len(in.Programmes)
	for i := 0; i < primary/30+sz.quirks; i++ {
		p := in.Programmes[r.IntN(primary)]
		other := r.IntN(len(in.Departments))
		if other == p.dept {
			continue
		}
		p.DptBDOID, p.dept = in.Departments[other].BDOID, other
		if slices.ContainsFunc(in.Programmes, func(q Programme) bool { return q.Code == p.Code && q.DptBDOID == p.DptBDOID }) {
			continue
		}
		in.Programmes = append(in.Programmes, p)
	}

	// Routes: every programme's first route has the programme's code; the
	// others are variants; a few route codes recur under another programme.
	g.routesByProg = make([][]int, len(in.Programmes))
	usedRoute := map[string]bool{}
	addRoute := func(rt Route) {
		in.Routes = append(in.Routes, rt)
		g.routesByProg[rt.prog] = append(g.routesByProg[rt.prog], len(in.Routes)-1)
	}
	for p := 0; p < primary; p++ {
		pr := in.Programmes[p]
		usedRoute[pr.Code] = true
		addRoute(Route{Code: pr.Code, Name: in.Departments[pr.dept].Name, ProgCode: pr.Code, DptBDOID: pr.DptBDOID, IOESessions: pr.IOESessions, prog: p})
	}
	extra := sz.routes - primary - (sz.routes/50 + sz.quirks)
	for i := 0; i < extra; i++ {
		p := r.IntN(primary)
		pr := in.Programmes[p]
		seq := 2
		code := unique(usedRoute, func() string {
			c := fmt.Sprintf("%s%02d", pr.Code[:10], seq)
			seq++
			return c
		})
		addRoute(Route{Code: code, Name: in.Departments[pr.dept].Name + " with " + topicWords[r.IntN(len(topicWords))],
			ProgCode: pr.Code, DptBDOID: pr.DptBDOID, IOESessions: pr.IOESessions, prog: p})
	}
	for i := 0; i < sz.routes/50+sz.quirks; i++ {
		src := in.Routes[r.IntN(len(in.Routes))]
		level := in.Programmes[src.prog].level
		cands := g.progsByLevel[level]
		p := cands[r.IntN(len(cands))]
		if p == src.prog || p >= primary {
			continue
		}
		pr := in.Programmes[p]
		if slices.ContainsFunc(in.Routes, func(x Route) bool { return x.Code == src.Code && x.ProgCode == pr.Code }) {
			continue
		}
		addRoute(Route{Code: src.Code, Name: src.Name, ProgCode: pr.Code, DptBDOID: pr.DptBDOID, IOESessions: pr.IOESessions, prog: p})
	}
}

var usernamePrefixes = []string{"ucab", "zcqs", "ucjt", "rmhi", "ucfn", "uczl", "ucbe", "ucqt", "ucgb", "zchr"}

func (g *gen) staffAndStudents() {
	r := g.rng(streamPeople)
	in, sz := g.in, g.sz
	usedUser, usedUPI, usedEmail := map[string]bool{}, map[string]bool{}, map[string]bool{}
	upi := func() string {
		return unique(usedUPI, func() string { return letters(r, 5, upper) + fmt.Sprintf("%02d", r.IntN(100)) })
	}
	email := func(first, sur, tail string) string {
		local := asciiFold(first)
		if f := asciiFold(sur); f != "" {
			if local != "" {
				local += "."
			}
			local += f
		}
		if local == "" {
			local = "student"
		}
		n := 1
		return unique(usedEmail, func() string {
			e := local + tail
			if n > 1 {
				e = fmt.Sprintf("%s%d%s", local, n, tail)
			}
			n++
			return e + "@example.ac.uk"
		})
	}

	g.deptStaff = make([][]int, len(in.Departments))
	staffSeq := 100000 + r.IntN(1000)
	for i := 0; i < sz.staff; i++ {
		dept := i % len(in.Departments)
		if i >= 2*len(in.Departments) {
			dept = r.IntN(len(in.Departments))
		}
		staffSeq += 1 + r.IntN(40)
		first, sur := personName(r, firstNames), personName(r, surnames)
		st := Staff{
			ID:         fmt.Sprintf("S%07d", staffSeq),
			UPI:        upi(),
			Username:   unique(usedUser, func() string { return "cc" + letters(r, 5, lower) }),
			FirstName:  first,
			Surname:    sur,
			LecturerID: fmt.Sprintf("L%05d", 10000+i),
			dept:       dept,
		}
		st.Email = email(first, sur, "")
		in.Staff = append(in.Staff, st)
		g.deptStaff[dept] = append(g.deptStaff[dept], i)
	}

	// Students. A few are forced to carry each quirk even at small scale.
	forced := func(n int) map[int]bool {
		m := map[int]bool{}
		for len(m) < n {
			m[r.IntN(sz.students)] = true
		}
		return m
	}
	noFirst, noEmail, twoRoutes := forced(sz.quirks), forced(sz.quirks), forced(sz.quirks*2)
	seqByYear := map[int]int{}
	g.studentByCode = map[string]int{}
	for i := 0; i < sz.students; i++ {
		level := byte('U')
		switch x := r.IntN(100); {
		case x >= 93:
			level = 'R'
		case x >= 60:
			level = 'T'
		}
		progs := g.progsByLevel[level]
		if len(progs) == 0 {
			level, progs = 'U', g.progsByLevel['U']
		}
		p := progs[r.IntN(len(progs))]
		prog := in.Programmes[p]
		study := 1
		switch level {
		case 'U':
			study = 1 + r.IntN(3)
			if strings.HasPrefix(prog.Code[1:], "MENG") || strings.HasPrefix(prog.Code[1:], "MSCI") {
				study = 1 + r.IntN(4)
			}
		case 'R':
			study = 1 + r.IntN(4)
		}
		yy := (g.in.Year - study + 1) % 100
		seqByYear[yy] += 1 + r.IntN(9)
		code := fmt.Sprintf("%02d%06d", yy, seqByYear[yy])
		first, sur := personName(r, firstNames), personName(r, surnames)
		s := Student{
			Code:      code,
			Username:  unique(usedUser, func() string { return usernamePrefixes[r.IntN(len(usernamePrefixes))] + letters(r, 3, lower) }),
			UPI:       upi(),
			FirstName: first,
			Surname:   sur,
			DptBDOID:  prog.DptBDOID,
			pg:        level != 'U',
			research:  level == 'R',
			studyYear: study,
			dept:      prog.dept,
		}
		if noFirst[i] || chance(r, 0.004) {
			s.FirstName = ""
		}
		s.Name = strings.TrimSpace(s.FirstName + " " + s.Surname)
		if !noEmail[i] && !chance(r, 0.004) {
			s.Email = email(first, sur, fmt.Sprintf(".%02d", yy))
		}
		if staff := g.deptStaff[s.dept]; len(staff) > 0 && chance(r, 0.8) {
			s.PersonalTutor = in.Staff[staff[r.IntN(len(staff))]].UPI
		}
		s.EnrolmentStatus = pick(r, enrolmentStatuses)
		s.JoinStatus = "O"
		switch s.EnrolmentStatus {
		case "L", "LE", "CE", "XF", "XN", "IS":
			if chance(r, 0.8) {
				s.JoinStatus = "C"
			}
		default:
			if chance(r, 0.01) {
				s.JoinStatus = "C"
			}
		}
		g.studentByCode[code] = len(in.Students)
		in.Students = append(in.Students, s)

		routes := g.routesByProg[p]
		rt := in.Routes[routes[r.IntN(len(routes))]]
		in.Assignments = append(in.Assignments, g.assignment(r, s, rt))
		if twoRoutes[i] || chance(r, 0.03) {
			// A second, concurrent route: another route of the same level.
			cands := g.progsByLevel[level]
			q := cands[r.IntN(len(cands))]
			if rs := g.routesByProg[q]; len(rs) > 0 {
				rt2 := in.Routes[rs[r.IntN(len(rs))]]
				if rt2.Code != rt.Code || rt2.ProgCode != rt.ProgCode {
					in.Assignments = append(in.Assignments, g.assignment(r, s, rt2))
				}
			}
		}
	}
}

func (g *gen) assignment(r *rand.Rand, s Student, rt Route) Assignment {
	prog := g.in.Programmes[rt.prog]
	pu := "U"
	if prog.level != 'U' {
		pu = "P"
	}
	year := strconv.Itoa(s.studyYear)
	if rt.IOESessions == "Y" && chance(r, 0.5) {
		year += "A"
	}
	return Assignment{StudentCode: s.Code, RouteCode: rt.Code, ProgCode: rt.ProgCode, DptBDOID: rt.DptBDOID,
		FacCode: g.in.Departments[prog.dept].FacCode, PostUndergrad: pu, CourseYear: year}
}

// periodDates gives a UCL period's start and end in academic year y.
func periodDates(psl string, y int) (time.Time, time.Time) {
	d := func(year int, m time.Month, day int) time.Time { return time.Date(year, m, day, 0, 0, 0, 0, time.UTC) }
	t1s, t1e := d(y, 9, 29), d(y, 12, 12)
	t2s, t2e := d(y+1, 1, 12), d(y+1, 3, 27)
	t3s, t3e := d(y+1, 4, 27), d(y+1, 6, 12)
	switch psl {
	case "T1":
		return t1s, t1e
	case "T2":
		return t2s, t2e
	case "T3":
		return t3s, t3e
	case "T1/2":
		return t1s, t2e
	case "T1/2/3", "YEAR", "T1/3":
		return t1s, t3e
	case "T2/3":
		return t2s, t3e
	case "T3/1":
		return t3s, d(y+1, 12, 11)
	case "S1", "SUMMER":
		return d(y+1, 7, 1), d(y+1, 8, 29)
	case "LSR":
		return d(y+1, 8, 3), d(y+1, 9, 4)
	}
	return t1s, t3e
}

func (g *gen) modules() {
	r := g.rng(streamModules)
	in, sz := g.in, g.sz
	instIDs, modIDs, prevInstIDs := newGUIDs(r), newGUIDs(r), newGUIDs(r)
	occIDs := newGUIDs(r)
	// Spread instances over the stems with uneven weights.
	type stemRef struct{ dept, stem int }
	var stems []stemRef
	var weights []float64
	total := 0.0
	for d := range in.Departments {
		for s := range in.Departments[d].stems {
			stems = append(stems, stemRef{d, s})
			w := 0.3 + r.Float64()
			weights = append(weights, w)
			total += w
		}
	}
	g.instsByDept = make([][]int, len(in.Departments))
	credits := []weighted{{"15", 60}, {"30", 22}, {"7.5", 6}, {"60", 6}, {"45", 6}}
	made := 0
	for i, st := range stems {
		n := int(math.Round(float64(sz.moduleInstances) * weights[i] / total))
		if i == len(stems)-1 {
			n = sz.moduleInstances - made
		}
		d := &in.Departments[st.dept]
		num := 1 + r.IntN(20)
		for k := 0; k < n; k++ {
			num += 1 + r.IntN(3)
			pg := chance(r, 0.35)
			level := 4 + r.IntN(3)
			if pg {
				level = 7
			}
			name := topicAdjectives[r.IntN(len(topicAdjectives))] + " " + strings.TrimPrefix(d.Name, "Institute of ") + " " + topicWords[r.IntN(len(topicWords))]
			mi := ModuleInstance{
				BDOID:     instIDs.next(),
				ModBDOID:  modIDs.next(),
				ModCode:   fmt.Sprintf("%s%04d", d.stems[st.stem], num),
				ModName:   name,
				DptBDOID:  d.BDOID,
				YearCode:  strconv.Itoa(in.Year),
				Credits:   pick(r, credits),
				pg:        pg,
				level:     level,
				dept:      st.dept,
				prevBDOID: prevInstIDs.next(),
			}
			if staff := g.deptStaff[st.dept]; len(staff) > 0 && chance(r, 0.95) {
				mi.LeaderUPI = in.Staff[staff[r.IntN(len(staff))]].UPI
			}
			in.ModuleInstances = append(in.ModuleInstances, mi)
			g.instsByDept[st.dept] = append(g.instsByDept[st.dept], len(in.ModuleInstances)-1)
		}
		made += n
	}
	// Occurrences of this year and last year for every instance.
	g.occsByInst = make([][]int, len(in.ModuleInstances))
	g.prevOccByInst = make([][]int, len(in.ModuleInstances))
	counts := []weighted{{"1", 22}, {"2", 30}, {"3", 25}, {"4", 13}, {"5", 10}}
	mavs := []weighted{{"A", 75}, {"C", 10}, {"B", 8}, {"D", 4}, {"E", 3}}
	for i := range in.ModuleInstances {
		mi := &in.ModuleInstances[i]
		for _, year := range []int{in.Year, in.Year - 1} {
			n, _ := strconv.Atoi(pick(r, counts))
			used := map[string]bool{}
			for k := 0; k < n; k++ {
				var mav, psl string
				for tries := 0; ; tries++ {
					c := pick(r, mavs)[0]
					if k == 0 {
						c = 'A'
					}
					ul := byte('U')
					if mi.pg {
						ul = 'P'
					}
					mav = string([]byte{c, byte('0' + mi.level), ul})
					psl = pick(r, periods)
					if !used[mav+psl] || tries > 20 {
						break
					}
				}
				if used[mav+psl] {
					continue
				}
				used[mav+psl] = true
				oc := Occurrence{
					BDOID:     occIDs.next(),
					InstBDOID: mi.BDOID,
					ModCode:   mi.ModCode,
					PSL:       psl,
					MAV:       mav,
					YearCode:  strconv.Itoa(year),
					Name:      mi.ModName,
					inst:      i,
					year:      year,
				}
				if mav[0] == 'C' || mav[0] == 'D' {
					oc.Name += " (Distance)"
				}
				if year != in.Year {
					oc.InstBDOID = mi.prevBDOID
				}
				if !chance(r, 0.02) {
					oc.Start, oc.End = periodDates(psl, year)
				}
				in.Occurrences = append(in.Occurrences, oc)
				if year == in.Year {
					g.occsByInst[i] = append(g.occsByInst[i], len(in.Occurrences)-1)
				} else {
					g.prevOccByInst[i] = append(g.prevOccByInst[i], len(in.Occurrences)-1)
				}
			}
		}
	}
}

func (g *gen) registrations() {
	r := g.rng(streamRegistrations)
	in, sz := g.in, g.sz
	prevTarget := sz.registrations * 5 / 100
	curTarget := sz.registrations - prevTarget
	weightOf := func(s *Student) float64 {
		switch {
		case s.research:
			return 0.3
		case s.pg:
			return 1
		}
		return 1.15
	}
	var totalW float64
	for i := range in.Students {
		totalW += weightOf(&in.Students[i])
	}
	mean := float64(curTarget) / totalW
	statuses := []weighted{{"CON", 78}, {"APP", 12}, {"NEW", 6}, {"REJ", 4}}
	var depts []int // departments that have instances
	for d, insts := range g.instsByDept {
		if len(insts) > 0 {
			depts = append(depts, d)
		}
	}
	hasSecond := map[string]bool{}
	for i := 1; i < len(in.Assignments); i++ {
		if in.Assignments[i].StudentCode == in.Assignments[i-1].StudentCode {
			hasSecond[in.Assignments[i].StudentCode] = true
		}
	}
	add := func(si, oi int, status string) {
		s := &in.Students[si]
		oc := &in.Occurrences[oi]
		mi := &in.ModuleInstances[oc.inst]
		smo := "SMS"
		if status == "CON" && chance(r, 0.9) {
			smo = "SMO"
		}
		spr := s.Code + "/1"
		if hasSecond[s.Code] && chance(r, 0.3) {
			spr = s.Code + "/2"
		}
		in.Registrations = append(in.Registrations, Registration{StudentCode: s.Code, OccBDOID: oc.BDOID,
			ModDptBDOID: mi.DptBDOID, RegStatus: status, SMOSMS: smo, SPRCode: spr, student: si, occ: oi})
	}
	pickOcc := func(s *Student, occs func(int) []int) int {
		for tries := 0; tries < 8; tries++ {
			d := s.dept
			if len(g.instsByDept[d]) == 0 || chance(r, 0.3) {
				d = depts[r.IntN(len(depts))]
			}
			insts := g.instsByDept[d]
			inst := insts[r.IntN(len(insts))]
			if in.ModuleInstances[inst].pg != s.pg && tries < 4 {
				continue
			}
			os := occs(inst)
			if len(os) == 0 {
				continue
			}
			o := os[0] // the campus occurrence, usually
			if chance(r, 0.25) {
				o = os[r.IntN(len(os))]
			}
			return o
		}
		return -1
	}
	for si := range in.Students {
		s := &in.Students[si]
		n := int(weightOf(s)*mean + (r.Float64()*4 - 2) + 0.5)
		if n < 1 {
			n = 1
		}
		var mine []int
		for k := 0; k < n; k++ {
			o := pickOcc(s, func(i int) []int { return g.occsByInst[i] })
			if o < 0 || slices.Contains(mine, o) {
				continue
			}
			mine = append(mine, o)
			add(si, o, pick(r, statuses))
		}
	}
	// Last year's registrations of continuing students (resits, late
	// results): dropped at extraction by min_year.
	var continuing []int
	for si := range in.Students {
		if in.Students[si].studyYear > 1 {
			continuing = append(continuing, si)
		}
	}
	seen := map[[2]int]bool{}
	for k := 0; k < prevTarget*3 && len(continuing) > 0 && len(in.Registrations) < sz.registrations; k++ {
		si := continuing[r.IntN(len(continuing))]
		o := pickOcc(&in.Students[si], func(i int) []int { return g.prevOccByInst[i] })
		if o < 0 || seen[[2]int{si, o}] {
			continue
		}
		seen[[2]int{si, o}] = true
		add(si, o, "CON")
	}
}
