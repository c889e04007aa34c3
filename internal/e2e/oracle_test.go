package e2e_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// oracle answers, from the generated institution itself (not from the
// warehouse), what the marts should say, by the rules docs/contracts.md and
// the ref tables of migration 00030 give. The tests compare whole sets of rows with it, not only
// the Manifest's counts.
type oracle struct {
	in        *synth.Institution
	student   map[string]*synth.Student
	occ       map[string]*synth.Occurrence
	inst      map[string]*synth.ModuleInstance
	regsByOcc map[string][]synth.Registration
	staffUPI  map[string]*synth.Staff // upper-case UPI
}

var regLevel = map[string]int{"CON": 3, "APP": 2, "NEW": 1, "REJ": 0}

func newOracle(in *synth.Institution) *oracle {
	o := &oracle{in: in, student: map[string]*synth.Student{}, occ: map[string]*synth.Occurrence{},
		inst: map[string]*synth.ModuleInstance{}, regsByOcc: map[string][]synth.Registration{}, staffUPI: map[string]*synth.Staff{}}
	for i := range in.Students {
		o.student[in.Students[i].Code] = &in.Students[i]
	}
	for i := range in.Occurrences {
		o.occ[in.Occurrences[i].BDOID] = &in.Occurrences[i]
	}
	for i := range in.ModuleInstances {
		o.inst[in.ModuleInstances[i].BDOID] = &in.ModuleInstances[i]
	}
	for _, r := range in.Registrations {
		o.regsByOcc[r.OccBDOID] = append(o.regsByOcc[r.OccBDOID], r)
	}
	for i := range in.Staff {
		o.staffUPI[strings.ToUpper(in.Staff[i].UPI)] = &in.Staff[i]
	}
	return o
}

func (o *oracle) site(name string) *moodletest.State {
	for _, s := range o.in.Sites {
		if s.Name == name {
			return s.State
		}
	}
	panic("no site " + name)
}

func (o *oracle) active(code string) bool {
	s := o.student[code]
	return s != nil && s.Active()
}

// admitted lists the active students whose registration on occurrence occ
// a mapping with minimum status minReg admits (ref.sits_registration_status).
func (o *oracle) admitted(occ, minReg string) []string {
	var out []string
	for _, r := range o.regsByOcc[occ] {
		if l := regLevel[r.RegStatus]; l > 0 && l >= regLevel[minReg] && o.active(r.StudentCode) && !slices.Contains(out, r.StudentCode) {
			out = append(out, r.StudentCode)
		}
	}
	return out
}

// frame is an enrolment timeframe as the marts write it: dates, or NULL.
type frame struct{ begin, end string }

// moduleTarget is the student target of a site's active module_occurrence
// mappings (sis_key a BDO id), from min_mod_occ_year minYear on: course
// idnumber -> student code -> timeframe (first start, last end; NULL on a
// side if any occurrence has none there).
func (o *oracle) moduleTarget(site string, ms []synth.Mapping, minYear int) map[string]map[string]frame {
	type acc struct {
		begin, end         string
		openBegin, openEnd bool
	}
	accs := map[string]map[string]*acc{}
	for _, m := range ms {
		if m.Instance != site || !m.Active || m.SISKind != "module_occurrence" {
			continue
		}
		oc := o.occ[m.SISKey]
		if oc == nil {
			continue
		}
		if y, _ := strconv.Atoi(oc.YearCode); minYear > 0 && y < minYear {
			continue
		}
		for _, code := range o.admitted(oc.BDOID, m.MinRegStatus) {
			if accs[m.CourseIDNumber] == nil {
				accs[m.CourseIDNumber] = map[string]*acc{}
			}
			a := accs[m.CourseIDNumber][code]
			if a == nil {
				a = &acc{}
				accs[m.CourseIDNumber][code] = a
			}
			if oc.Start.IsZero() {
				a.openBegin = true
			} else if b := oc.Start.Format("2006-01-02"); a.begin == "" || b < a.begin {
				a.begin = b
			}
			if oc.End.IsZero() {
				a.openEnd = true
			} else if e := oc.End.Format("2006-01-02"); a.end == "" || e > a.end {
				a.end = e
			}
		}
	}
	out := map[string]map[string]frame{}
	for c, per := range accs {
		out[c] = map[string]frame{}
		for code, a := range per {
			f := frame{a.begin, a.end}
			if a.openBegin {
				f.begin = "NULL"
			}
			if a.openEnd {
				f.end = "NULL"
			}
			out[c][code] = f
		}
	}
	return out
}

// accounts indexes a site's users by idnumber and by upper-case UPI.
func accounts(st *moodletest.State) (byIDNumber, byUPI map[string][]moodletest.User) {
	byIDNumber, byUPI = map[string][]moodletest.User{}, map[string][]moodletest.User{}
	for _, u := range st.Users {
		if u.IDNumber != "" {
			byIDNumber[u.IDNumber] = append(byIDNumber[u.IDNumber], u)
		}
		if v := u.CustomFields["upi"]; v != "" {
			byUPI[strings.ToUpper(v)] = append(byUPI[strings.ToUpper(v)], u)
		}
	}
	return byIDNumber, byUPI
}

// mergePairs is the merge list of a site by the rule of
// mart.exp_merge_candidates: a student's accounts are those carrying the
// student code and those without idnumber whose e-mail equals one of
// theirs ignoring case (an account claimed by two students is left out);
// an account suspended with no enrolment on the site is already merged (no
// list was sent here) and left out; of the rest, every one but the account
// the default keep rules choose (the SITS username, the site's main
// authentication, the student code, not suspended, newest) is merged into
// it. Keys "from>to reason".
func (o *oracle) mergePairs(site string) map[string]bool {
	st := o.site(site)
	type acct struct {
		u      moodletest.User
		reason string
	}
	enrolled := map[int64]bool{}
	for _, e := range st.Enrolments {
		enrolled[e.UserID] = true
	}
	auth := func(u moodletest.User) string {
		if u.Auth == "" {
			return "manual"
		}
		return u.Auth
	}
	// The site's main authentication: the one most active accounts with an
	// idnumber have.
	count := map[string]int{}
	for _, u := range st.Users {
		if u.IDNumber != "" && !u.Suspended {
			count[auth(u)]++
		}
	}
	mainAuth := ""
	for a, n := range count {
		if n > count[mainAuth] || n == count[mainAuth] && a < mainAuth {
			mainAuth = a
		}
	}
	per := map[string][]acct{}
	emailOf := map[string][]string{} // lower e-mail -> codes of accounts carrying a code
	for _, u := range st.Users {
		if o.student[u.IDNumber] != nil {
			per[u.IDNumber] = append(per[u.IDNumber], acct{u, "same SITS student code"})
			if u.Email != "" {
				emailOf[strings.ToLower(u.Email)] = append(emailOf[strings.ToLower(u.Email)], u.IDNumber)
			}
		}
	}
	emails := map[string]map[string]string{} // code -> exact e-mails of its coded accounts
	for _, u := range st.Users {
		if o.student[u.IDNumber] != nil && u.Email != "" {
			if emails[u.IDNumber] == nil {
				emails[u.IDNumber] = map[string]string{}
			}
			emails[u.IDNumber][u.Email] = u.Email
		}
	}
	for _, u := range st.Users {
		if u.IDNumber != "" || u.Email == "" {
			continue
		}
		codes := slices.Compact(slices.Sorted(slices.Values(emailOf[strings.ToLower(u.Email)])))
		if len(codes) != 1 {
			continue
		}
		reason := "case-variant e-mail"
		if _, same := emails[codes[0]][u.Email]; same {
			reason = "same e-mail"
		}
		per[codes[0]] = append(per[codes[0]], acct{u, reason})
	}
	out := map[string]bool{}
	for code, as := range per {
		if len(as) < 2 {
			continue
		}
		as = slices.DeleteFunc(slices.Clone(as), func(a acct) bool { return a.u.Suspended && !enrolled[a.u.ID] && len(st.Enrolments) > 0 })
		if len(as) < 2 {
			continue
		}
		bit := func(b bool) int {
			if b {
				return 0
			}
			return 1
		}
		sis := strings.ToLower(o.student[code].Username)
		keep := slices.MinFunc(as, func(a, b acct) int {
			ka := []int64{int64(bit(a.u.Username == sis)), int64(bit(auth(a.u) == mainAuth)), int64(bit(a.u.IDNumber == code)), int64(1 - bit(a.u.Suspended)), -a.u.ID}
			kb := []int64{int64(bit(b.u.Username == sis)), int64(bit(auth(b.u) == mainAuth)), int64(bit(b.u.IDNumber == code)), int64(1 - bit(b.u.Suspended)), -b.u.ID}
			return slices.Compare(ka, kb)
		})
		for _, a := range as {
			if a.u.ID == keep.u.ID {
				continue
			}
			reason := a.reason
			if reason == "same SITS student code" {
				reason = keep.reason
			}
			out[fmt.Sprintf("%d>%d %s", a.u.ID, keep.u.ID, reason)] = true
		}
	}
	return out
}
