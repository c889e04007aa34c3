package feedstest

import (
	"sort"
	"time"

	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// regLevel is the Manifest's registration level (ref.sits_registration_status, migration 00030).
var regLevel = map[string]int{"CON": 3, "APP": 2, "NEW": 1, "REJ": 0}

// SynthTarget is the IMS target of a site of the synthetic institution by
// the Manifest's rules: the rows T whose course exists on the site and
// whose student has exactly one account there (ActiveMemberships), each an
// active Learner membership under the mapping's role ("student", mapped by
// exports.ims_roles), from the first day of the registrations' occurrences
// to the last.
func SynthTarget(in *synth.Institution, site string) []Membership {
	var st *moodletest.State
	for _, s := range in.Sites {
		if s.Name == site {
			st = s.State
		}
	}
	if st == nil {
		return nil
	}
	courses := map[string]bool{}
	for _, c := range st.Courses {
		if c.IDNumber != "" {
			courses[c.IDNumber] = true
		}
	}
	accounts := map[string]int{}
	for _, u := range st.Users {
		if u.IDNumber != "" {
			accounts[u.IDNumber]++
		}
	}
	students := map[string]*synth.Student{}
	for i := range in.Students {
		students[in.Students[i].Code] = &in.Students[i]
	}
	occs := map[string]*synth.Occurrence{}
	for i := range in.Occurrences {
		occs[in.Occurrences[i].BDOID] = &in.Occurrences[i]
	}
	regs := map[string][]*synth.Registration{}
	for i := range in.Registrations {
		r := &in.Registrations[i]
		regs[r.OccBDOID] = append(regs[r.OccBDOID], r)
	}
	type key struct{ course, code string }
	rows := map[key]*Membership{}
	for _, m := range in.Mappings {
		if m.Instance != site || !m.Active || !courses[m.CourseIDNumber] {
			continue
		}
		role := "student"
		if len(m.Roles) > 0 {
			role = m.Roles[0]
		}
		for _, r := range regs[m.SISKey] {
			s := students[r.StudentCode]
			lvl := regLevel[r.RegStatus]
			if s == nil || !s.Active() || lvl == 0 || lvl < regLevel[m.MinRegStatus] || accounts[r.StudentCode] != 1 {
				continue
			}
			k := key{m.CourseIDNumber, r.StudentCode}
			row := rows[k]
			if row == nil {
				row = &Membership{Instance: site, CourseIDNumber: m.CourseIDNumber, UserIDNumber: r.StudentCode,
					RoleType: role, Status: 1, StudentCode: r.StudentCode}
				rows[k] = row
			}
			if o := occs[r.OccBDOID]; o != nil {
				row.Begin = earlier(row.Begin, o.Start)
				row.LastDay = later(row.LastDay, o.End)
			}
		}
	}
	out := make([]Membership, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].CourseIDNumber != out[j].CourseIDNumber {
			return out[i].CourseIDNumber < out[j].CourseIDNumber
		}
		return out[i].UserIDNumber < out[j].UserIDNumber
	})
	return out
}

func earlier(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func later(a, b time.Time) time.Time {
	if a.IsZero() || b.After(a) {
		return b
	}
	return a
}

// Drift compares the active rows with a site as the Manifest does: missing
// are rows whose account has no student-role enrolment in the course,
// suspended those whose every student-role enrolment there is suspended.
func Drift(st moodletest.State, rows []Membership) (missing, suspended int) {
	student := int64(5)
	for _, r := range st.Roles {
		if r.ShortName == "student" {
			student = r.ID
		}
	}
	courseID := map[string]int64{}
	for _, c := range st.Courses {
		if c.IDNumber != "" {
			courseID[c.IDNumber] = c.ID
		}
	}
	userID := map[string]int64{}
	for _, u := range st.Users {
		if u.IDNumber != "" {
			userID[u.IDNumber] = u.ID
		}
	}
	type key struct{ course, user int64 }
	type state struct{ any, active bool }
	enrol := map[key]*state{}
	for _, e := range st.Enrolments {
		has := false
		for _, r := range e.RoleIDs {
			has = has || r == student
		}
		if !has {
			continue
		}
		k := key{e.CourseID, e.UserID}
		s := enrol[k]
		if s == nil {
			s = &state{}
			enrol[k] = s
		}
		s.any = true
		s.active = s.active || !e.Suspended
	}
	for _, r := range rows {
		if r.Status != 1 {
			continue
		}
		s := enrol[key{courseID[r.CourseIDNumber], userID[r.UserIDNumber]}]
		switch {
		case s == nil:
			missing++
		case !s.active:
			suspended++
		}
	}
	return missing, suspended
}
