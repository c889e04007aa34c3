package moodletest

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// This file is the site's programmatic interface: a consistent snapshot,
// lookups, and the changes an IMS Enterprise run or a test makes outside
// the web services. Every method takes the site's lock; changes are
// checked as New checks a State.

// Snapshot returns the site's content as a State, sorted by id (enrolments
// by course, user and method), with the site course, system users and
// standard roles it added. New(Snapshot()) rebuilds an equal site.
func (s *Site) Snapshot() State {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := State{SiteName: s.siteName, Release: s.release}
	for _, id := range sortedKeys(s.cats) {
		st.Categories = append(st.Categories, s.cats[id].Category)
	}
	for _, id := range sortedKeys(s.courses) {
		st.Courses = append(st.Courses, s.courses[id].Course)
	}
	for _, id := range s.userIDs {
		st.Users = append(st.Users, copyUser(s.users[id]))
	}
	st.ProfileFields = slices.Clone(s.fields)
	st.Roles = slices.Clone(s.roles)
	sort.Slice(st.Roles, func(i, j int) bool { return st.Roles[i].ID < st.Roles[j].ID })
	for _, cid := range sortedKeys(s.enrol) {
		ce := s.enrol[cid]
		for _, uid := range ce.ids {
			m := ce.users[uid]
			enrols := slices.Clone(m.enrols)
			sort.Slice(enrols, func(i, j int) bool { return enrols[i].Method < enrols[j].Method })
			for _, e := range enrols {
				cp := *e
				cp.RoleIDs = slices.Clone(m.roles)
				st.Enrolments = append(st.Enrolments, cp)
			}
		}
	}
	if len(s.disabled) > 0 {
		st.DisabledMethods = sortedCourseMethods(s.disabled)
	}
	for _, id := range sortedKeys(s.groups) {
		g := s.groups[id]
		cp := g.Group
		cp.Members = sortedKeys(g.members)
		st.Groups = append(st.Groups, cp)
	}
	for _, id := range sortedKeys(s.groupings) {
		g := s.groupings[id]
		cp := g.Grouping
		cp.Groups = slices.Clone(g.Groups)
		slices.Sort(cp.Groups)
		st.Groupings = append(st.Groupings, cp)
	}
	for _, id := range sortedKeys(s.items) {
		if s.autoTotal[id] {
			continue // made again when the State is loaded
		}
		st.GradeItems = append(st.GradeItems, *s.items[id])
		for _, uid := range sortedKeys(s.grades[id]) {
			g := *s.grades[id][uid]
			if g.Raw != nil {
				v := *g.Raw
				g.Raw = &v
			}
			st.Grades = append(st.Grades, g)
		}
	}
	for _, cid := range sortedKeys(s.completion) {
		for _, uid := range sortedKeys(s.completion[cid]) {
			c := *s.completion[cid][uid]
			if c.Progress != nil {
				v := *c.Progress
				c.Progress = &v
			}
			st.Completions = append(st.Completions, c)
		}
	}
	return st
}

func copyUser(u *User) User {
	cp := *u
	if u.CustomFields != nil {
		cp.CustomFields = make(map[string]string, len(u.CustomFields))
		for k, v := range u.CustomFields {
			cp.CustomFields[k] = v
		}
	}
	return cp
}

// Course returns the course with id.
func (s *Site) Course(id int64) (Course, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c := s.courses[id]; c != nil {
		return c.Course, true
	}
	return Course{}, false
}

// CourseByIDNumber finds a course by idnumber, as enrol_imsenterprise does.
func (s *Site) CourseByIDNumber(idnumber string) (Course, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if id, ok := s.courseByIDNumber[idnumber]; ok && idnumber != "" {
		return s.courses[id].Course, true
	}
	return Course{}, false
}

// User returns the user with id.
func (s *Site) User(id int64) (User, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if u := s.users[id]; u != nil {
		return copyUser(u), true
	}
	return User{}, false
}

// UserByUsername finds a user by username (compared in lower case).
func (s *Site) UserByUsername(username string) (User, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if id, ok := s.userByName[strings.ToLower(username)]; ok {
		return copyUser(s.users[id]), true
	}
	return User{}, false
}

// UsersByIDNumber returns every user with idnumber (several, by mistake).
func (s *Site) UsersByIDNumber(idnumber string) []User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []User
	for _, id := range s.usersByIDNumber[idnumber] {
		out = append(out, copyUser(s.users[id]))
	}
	return out
}

// Enrolments returns a course's enrolments, as Snapshot reports them.
func (s *Site) Enrolments(courseID int64) []Enrolment {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ce := s.enrol[courseID]
	if ce == nil {
		return nil
	}
	var out []Enrolment
	for _, uid := range ce.ids {
		m := ce.users[uid]
		for _, e := range m.enrols {
			cp := *e
			cp.RoleIDs = slices.Clone(m.roles)
			out = append(out, cp)
		}
	}
	return out
}

// GroupMembers returns the members of a group, by user id.
func (s *Site) GroupMembers(groupID int64) ([]int64, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groups[groupID]
	if g == nil {
		return nil, false
	}
	return sortedKeys(g.members), true
}

// AddUser adds an account; an ID of 0 is allocated. It returns the id.
func (s *Site) AddUser(u User) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ID == 0 {
		u.ID = s.next.user + 1
	}
	if err := s.checkUser(&u); err != nil {
		return 0, err
	}
	if s.users[u.ID] != nil {
		return 0, fmt.Errorf("user %d already exists", u.ID)
	}
	if other, dup := s.userByName[u.Username]; dup {
		return 0, fmt.Errorf("username %q already used by user %d", u.Username, other)
	}
	if err := s.checkFields(u); err != nil {
		return 0, err
	}
	s.putUser(&u)
	s.next.user = max(s.next.user, u.ID)
	return u.ID, nil
}

// UpdateUser replaces an existing account's details (an IMS person update).
func (s *Site) UpdateUser(u User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users[u.ID] == nil {
		return fmt.Errorf("user %d does not exist", u.ID)
	}
	if err := s.checkUser(&u); err != nil {
		return err
	}
	if other, dup := s.userByName[u.Username]; dup && other != u.ID {
		return fmt.Errorf("username %q already used by user %d", u.Username, other)
	}
	if err := s.checkFields(u); err != nil {
		return err
	}
	s.putUser(&u)
	return nil
}

func (s *Site) checkFields(u User) error {
	for k := range u.CustomFields {
		if !slices.ContainsFunc(s.fields, func(pf ProfileField) bool { return pf.ShortName == k }) {
			return fmt.Errorf("user %d: profile field %q does not exist", u.ID, k)
		}
	}
	return nil
}

// AddCategory adds a course category; an ID of 0 is allocated.
func (s *Site) AddCategory(c Category) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.ID == 0 {
		c.ID = s.next.cat + 1
	}
	if s.cats[c.ID] != nil {
		return 0, fmt.Errorf("category %d already exists", c.ID)
	}
	if c.Parent != 0 && s.cats[c.Parent] == nil {
		return 0, fmt.Errorf("category %d: parent %d does not exist", c.ID, c.Parent)
	}
	s.cats[c.ID] = &category{Category: c, timemodified: s.now().Unix()}
	s.next.cat = max(s.next.cat, c.ID)
	return c.ID, s.resortCategories()
}

// AddCourse adds a course with a manual enrolment instance; an ID of 0 is
// allocated.
func (s *Site) AddCourse(c Course) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.cats[c.CategoryID] == nil:
		return 0, fmt.Errorf("course %q: category %d does not exist", c.ShortName, c.CategoryID)
	case c.ShortName == "":
		return 0, fmt.Errorf("course %d: shortname is empty", c.ID)
	case c.Format == "site":
		return 0, fmt.Errorf("course %q: only the site course has format \"site\"", c.ShortName)
	}
	if other, dup := s.courseByShort[c.ShortName]; dup {
		return 0, fmt.Errorf("course shortname %q already used by course %d", c.ShortName, other)
	}
	if other, dup := s.courseByIDNumber[c.IDNumber]; dup && c.IDNumber != "" {
		return 0, fmt.Errorf("course idnumber %q already used by course %d", c.IDNumber, other)
	}
	if c.ID != 0 && s.courses[c.ID] != nil {
		return 0, fmt.Errorf("course %d already exists", c.ID)
	}
	return s.addCourse(c, s.now().Unix()), nil
}

// Enrol adds the user's enrolment in the course by e.Method ("manual" when
// empty), or updates the one they have by that method (suspension, times),
// and gives them e.RoleIDs in the course.
func (s *Site) Enrol(e Enrolment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkEnrolment(e); err != nil {
		return err
	}
	s.putEnrolment(e)
	s.ensureInstance(e.CourseID, methodOf(e.Method))
	return nil
}

// Unenrol removes the user's enrolment in the course by method. When it
// was their last one there, their roles and group memberships in the
// course go too, as Moodle's unenrol_user does. It says whether there was
// such an enrolment.
func (s *Site) Unenrol(courseID, userID int64, method string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.removeEnrolment(courseID, userID, methodOf(method))
	return ok
}

// SetSuspended suspends or reactivates the user's enrolment by method.
func (s *Site) SetSuspended(courseID, userID int64, method string, suspended bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.member(courseID, userID)
	if m == nil || m.enrol(methodOf(method)) == nil {
		return fmt.Errorf("user %d has no %s enrolment in course %d", userID, methodOf(method), courseID)
	}
	m.enrol(methodOf(method)).Suspended = suspended
	return nil
}

// AssignRole gives an enrolled user a role in a course.
func (s *Site) AssignRole(courseID, userID, roleID int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.member(courseID, userID)
	switch {
	case m == nil:
		return fmt.Errorf("user %d is not enrolled in course %d", userID, courseID)
	case s.roleByID[roleID] == nil:
		return fmt.Errorf("role %d does not exist", roleID)
	}
	s.addRole(m, roleID)
	return nil
}

// UnassignRole takes a role away from a user in a course; the enrolment
// stays, as in Moodle.
func (s *Site) UnassignRole(courseID, userID, roleID int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.member(courseID, userID)
	if m == nil || !slices.Contains(m.roles, roleID) {
		return false
	}
	m.roles = slices.DeleteFunc(m.roles, func(r int64) bool { return r == roleID })
	return true
}
