package e2e_test

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/synth"
)

// checkDetails compares whole sets of mart rows with the oracle: the
// target's pairs and timeframes, the IMS rows, the merge list, the tutor
// table and the profile fields of every site.
func checkDetails(t testing.TB, w *world) {
	t.Helper()
	o := newOracle(w.In)
	pool := w.DB.Pool
	for _, sm := range w.In.Manifest.Sites {
		site := sm.Site
		st := o.site(site)
		byIDNumber, byUPI := accounts(st)

		// The target, pair by pair, with its timeframe.
		want := map[string]frame{}
		for course, per := range o.moduleTarget(site, w.In.Mappings, w.In.Year) {
			for code, f := range per {
				want[course+" "+code] = f
			}
		}
		got := map[string]frame{}
		for _, r := range rows(t, pool, `SELECT course_idnumber, student_code, coalesce(timeframe_begin::text, 'NULL'), coalesce(timeframe_end::text, 'NULL')
			FROM mart.fct_enrolment_target WHERE instance = $1 AND person_kind = 'student'`, site) {
			got[r[0]+" "+r[1]] = frame{r[2], r[3]}
		}
		diff(t, site+" target (course student -> timeframe)", want, got)

		// IMS: every pair whose course and account exist exactly once, as
		// roletype 01, with the account's idnumber.
		courses := map[string]int{}
		for _, c := range st.Courses {
			if c.IDNumber != "" {
				courses[c.IDNumber]++
			}
		}
		wantIMS := map[string]frame{}
		for k, f := range want {
			course, code, _ := strings.Cut(k, " ")
			if courses[course] == 1 && len(byIDNumber[code]) == 1 {
				wantIMS[course+" "+code+" 01 1"] = f
			}
		}
		gotIMS := map[string]frame{}
		for _, r := range rows(t, pool, `SELECT course_idnumber, user_idnumber, roletype, status, coalesce(timeframe_begin::text, 'NULL'), coalesce(timeframe_end::text, 'NULL')
			FROM mart.exp_ims_membership WHERE instance = $1`, site) {
			gotIMS[strings.Join(r[:4], " ")] = frame{r[4], r[5]}
		}
		diff(t, site+" IMS memberships", wantIMS, gotIMS)

		// The merge list.
		wantMerge := o.mergePairs(site)
		gotMerge := map[string]bool{}
		for _, r := range rows(t, pool, `SELECT from_userid, to_userid, reason, evidence, to_idnumber FROM mart.exp_merge_candidates WHERE instance = $1`, site) {
			gotMerge[r[0]+">"+r[1]+" "+r[2]] = true
			if !strings.Contains(r[3], "SITS student "+r[4]+" has ") || !strings.Contains(r[3], r[0]+" ") {
				t.Errorf("%s merge %s>%s: evidence %q does not name the student and the account", site, r[0], r[1], r[3])
			}
		}
		diff(t, site+" merge pairs", wantMerge, gotMerge)

		// The tutor table: active students with one account, whose tutor's
		// UPI one account carries, with an idnumber no other holds.
		wantTutor := map[string]bool{}
		for _, s := range w.In.Students {
			if !s.Active() || s.PersonalTutor == "" || len(byIDNumber[s.Code]) != 1 {
				continue
			}
			if ts := byUPI[strings.ToUpper(s.PersonalTutor)]; len(ts) == 1 && ts[0].IDNumber != "" && len(byIDNumber[ts[0].IDNumber]) == 1 {
				wantTutor["personal_tutor "+ts[0].IDNumber+" "+s.Code] = true
				if staff := o.staffUPI[strings.ToUpper(s.PersonalTutor)]; staff == nil || staff.ID != ts[0].IDNumber {
					t.Errorf("%s: tutor %s of %s is account %s, not the staff member's", site, s.PersonalTutor, s.Code, ts[0].IDNumber)
				}
			}
		}
		gotTutor := map[string]bool{}
		for _, r := range rows(t, pool, `SELECT role_shortname, tutor_idnumber, student_idnumber FROM mart.exp_personal_tutor WHERE instance = $1`, site) {
			gotTutor[strings.Join(r, " ")] = true
		}
		diff(t, site+" tutor pairs", wantTutor, gotTutor)

		// Profile fields of accounts of students with one assignment.
		single := map[string]int{}
		for _, a := range w.In.Assignments {
			single[a.StudentCode]++
		}
		progName := map[string]string{}
		for _, p := range w.In.Programmes {
			progName[p.Code+"|"+p.DptBDOID] = p.Name
		}
		year := strconv.Itoa(w.In.Year)
		mods := map[string][2][]string{} // code -> approved, pre-approval
		for _, r := range w.In.Registrations {
			oc := o.occ[r.OccBDOID]
			if oc == nil || oc.YearCode != year || regLevel[r.RegStatus] == 0 {
				continue
			}
			m := mods[r.StudentCode]
			i := 1
			if regLevel[r.RegStatus] >= 2 {
				i = 0
			}
			if code := strings.TrimSpace(oc.ModCode); !slices.Contains(m[i], code) {
				m[i] = append(m[i], code)
			}
			mods[r.StudentCode] = m
		}
		wantProfile := map[string]bool{}
		for _, u := range st.Users {
			s := o.student[u.IDNumber]
			if s == nil || !s.Active() || single[s.Code] != 1 {
				continue
			}
			a := w.In.Assignments[slices.IndexFunc(w.In.Assignments, func(a synth.Assignment) bool { return a.StudentCode == s.Code })]
			m := mods[s.Code]
			var pre []string
			for _, c := range m[1] {
				if !slices.Contains(m[0], c) {
					pre = append(pre, c)
				}
			}
			sort.Strings(m[0])
			sort.Strings(pre)
			ugpg := map[string]string{"U": "UG", "P": "PG"}[a.PostUndergrad]
			yl := strings.TrimRightFunc(a.CourseYear, func(r rune) bool { return r < '0' || r > '9' })
			wantProfile[fmt.Sprintf("%s|%s|%s|%s|%s|%s|%s|%s", u.Username, s.Code, a.ProgCode, progName[a.ProgCode+"|"+a.DptBDOID], ugpg,
				strings.Join(m[0], ","), strings.Join(pre, ","), yl)] = true
		}
		gotProfile := map[string]bool{}
		for _, r := range rows(t, pool, `SELECT p.username, p.student_number, coalesce(p.programme_code, ''), coalesce(p.programme_name, ''), coalesce(p.ug_pg, ''),
				p.approved_modules, p.preapproval_modules, coalesce(p.year_level, '')
			FROM mart.exp_profile_fields p JOIN int.student s ON s.student_code = p.student_number
			WHERE p.instance = $1 AND s.assignments = 1`, site) {
			gotProfile[strings.Join(r, "|")] = true
		}
		diff(t, site+" profile rows", wantProfile, gotProfile)
	}
}

// diff reports the keys of want and got that differ, a few of each.
func diff[V comparable](t testing.TB, what string, want, got map[string]V) {
	t.Helper()
	var missing, extra, changed []string
	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			missing = append(missing, k)
		case g != v:
			changed = append(changed, fmt.Sprintf("%s: %v, want %v", k, g, v))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	if len(missing)+len(extra)+len(changed) > 0 {
		sort.Strings(missing)
		sort.Strings(extra)
		sort.Strings(changed)
		t.Errorf("%s: %d rows, want %d; missing %d %v; unexpected %d %v; different %d %v", what, len(got), len(want),
			len(missing), head(missing), len(extra), head(extra), len(changed), head(changed))
	}
	if len(want) == 0 && !strings.Contains(what, "archive") {
		t.Logf("%s: no rows to compare", what)
	}
}

func head(s []string) []string { return s[:min(len(s), 4)] }
