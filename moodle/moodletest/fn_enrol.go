package moodletest

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

func getEnrolledUsers(c *call) *exception {
	courseID := c.a.int("courseid")
	var (
		onlyActive, onlySuspended bool
		groupID, limitFrom        int64
		limitNumber               int64
		withCapability            string
		fields                    map[string]bool
		sortBy                    = "id"
		desc                      bool
	)
	for _, opt := range c.a.items("options") {
		v := opt.str("value")
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch opt.str("name") {
		case "withcapability":
			withCapability = v
		case "groupid":
			groupID = n
		case "onlyactive":
			onlyActive = v != "" && v != "0"
		case "onlysuspended":
			onlySuspended = v != "" && v != "0"
		case "userfields":
			fields = map[string]bool{"id": true}
			for _, fl := range strings.Split(v, ",") {
				fields[strings.TrimSpace(fl)] = true
			}
		case "limitfrom":
			limitFrom = max(n, 0)
		case "limitnumber":
			limitNumber = max(n, 0)
		case "sortby":
			if slices.Contains([]string{"id", "firstname", "lastname", "siteorder"}, v) {
				sortBy = v
			}
		case "sortdirection":
			desc = strings.EqualFold(v, "DESC")
		}
	}
	if onlyActive && onlySuspended {
		return moodleException("bothonlyactiveandonlysuspended", "Both onlyactive and onlysuspended are set, this is not allowed")
	}
	cr := c.s.courses[courseID]
	if cr == nil {
		return missingRecord("course", "SELECT * FROM {course} WHERE id = ?", courseID)
	}
	if ex := c.validateCourse(courseID); ex != nil {
		return ex
	}
	// course_require_view_participants: either capability will do.
	if !c.can(CapEnrolReview, courseID) {
		if ex := c.require(CapViewParticipants, courseID); ex != nil {
			return ex
		}
	}
	if (onlyActive || onlySuspended) && c.roleToken() {
		if ex := c.require(CapEnrolReview, courseID); ex != nil {
			return ex
		}
	}
	var grp *group
	if groupID != 0 {
		grp = c.s.groups[groupID]
		if grp == nil || grp.CourseID != courseID {
			return moodleException("invalidgroupid", "Invalid group ID")
		}
	}
	o := c.o
	o.list()
	ce := c.s.enrol[courseID]
	if ce == nil {
		o.end()
		return nil
	}
	ids := ce.ids
	if sortBy == "firstname" || sortBy == "lastname" || desc {
		ids = slices.Clone(ids)
		sort.SliceStable(ids, func(i, j int) bool {
			a, b := c.s.users[ids[i]], c.s.users[ids[j]]
			switch sortBy {
			case "firstname":
				if a.FirstName != b.FirstName {
					return (a.FirstName < b.FirstName) != desc
				}
			case "lastname":
				if a.LastName != b.LastName {
					return (a.LastName < b.LastName) != desc
				}
			}
			return (a.ID < b.ID) != desc
		})
	}
	// The course's groups in name order, shared by every user written.
	view := userView{course: cr, fields: fields, courseCtx: true, groups: &[]*group{}}
	for _, gid := range c.s.groupsByName(courseID) {
		*view.groups = append(*view.groups, c.s.groups[gid])
	}
	var skipped, written int64
	for _, uid := range ids {
		m := ce.users[uid]
		isActive := m.isActive(c.now)
		if onlyActive && !isActive || onlySuspended && isActive {
			continue
		}
		if grp != nil {
			if _, in := grp.members[uid]; !in {
				continue
			}
		}
		if withCapability != "" && !c.s.roleHas(m, withCapability) {
			continue
		}
		if skipped < limitFrom {
			skipped++
			continue
		}
		if limitNumber > 0 && written >= limitNumber {
			break
		}
		u := c.s.users[uid]
		// Users whose details the caller may not see are left out.
		p := c.perms(u, true)
		if !p.visible {
			continue
		}
		c.writeUser(u, view, p)
		written++
	}
	o.end()
	return nil
}

// roleHas approximates capability checks for withcapability by role.
func (s *Site) roleHas(m *member, capability string) bool {
	for _, r := range m.roles {
		role := s.roleByID[r]
		if role == nil {
			continue
		}
		switch capability {
		case "moodle/course:managegroups", "moodle/course:update", "enrol/manual:enrol":
			if role.ShortName == "manager" || role.ShortName == "editingteacher" {
				return true
			}
		case "moodle/grade:viewall", "mod/assign:grade":
			if role.ShortName == "manager" || role.ShortName == "editingteacher" || role.ShortName == "teacher" {
				return true
			}
		case "moodle/grade:view", "mod/assign:submit", "moodle/course:isincompletionreports":
			if role.ShortName == "student" {
				return true
			}
		default:
			return true
		}
	}
	return false
}

// writeCourseMembership writes the course-context parts of an enrolled
// user: their groups in the course (omitted when none), roles, and the
// courses they are actively enrolled in (omitted when none).
func (c *call) writeCourseMembership(u *User, v userView) {
	o := c.o
	courseID := v.course.ID
	// A user's groups only to a caller who may see every group of the
	// course (moodle/site:accessallgroups).
	if v.want("groups") && (!c.roleToken() || c.can(CapAccessAllGroups, courseID)) {
		if v.groups == nil {
			gids := c.s.groupsByName(courseID)
			v.groups = &[]*group{}
			for _, gid := range gids {
				*v.groups = append(*v.groups, c.s.groups[gid])
			}
		}
		started := false
		for _, g := range *v.groups {
			if _, in := g.members[u.ID]; !in {
				continue
			}
			if !started {
				o.klist("groups")
				started = true
			}
			o.obj()
			o.knum("id", g.ID)
			o.kstr("name", g.Name)
			o.kstr("description", g.Description)
			o.knum("descriptionformat", g.descFormat)
			o.end()
		}
		if started {
			o.end()
		}
	}
	if v.want("roles") {
		o.klist("roles")
		if m := c.s.member(courseID, u.ID); m != nil {
			for _, r := range m.roles {
				role := c.s.roleByID[r]
				o.obj()
				o.knum("roleid", r)
				o.kstr("name", role.Name)
				o.kstr("shortname", role.ShortName)
				o.knum("sortorder", 0)
				o.end()
			}
		}
		o.end()
	}
	if v.want("enrolledcourses") {
		courses := c.s.activeCourses(u.ID, c.now)
		if len(courses) > 0 {
			o.klist("enrolledcourses")
			for _, id := range courses {
				cr := c.s.courses[id]
				o.obj()
				o.knum("id", id)
				o.kstr("fullname", cr.FullName)
				o.kstr("shortname", cr.ShortName)
				o.end()
			}
			o.end()
		}
	}
}

// activeCourses are the courses a user is actively enrolled in, in
// enrol_get_users_courses order: visible first, then by sortorder.
func (s *Site) activeCourses(userID, now int64) []int64 {
	var ids []int64
	for cid := range s.userCourses[userID] {
		if m := s.member(cid, userID); m != nil && m.isActive(now) {
			ids = append(ids, cid)
		}
	}
	slices.SortFunc(ids, func(x, y int64) int {
		a, b := s.courses[x], s.courses[y]
		switch {
		case a.Visible != b.Visible:
			if a.Visible {
				return -1
			}
			return 1
		case a.sortorder != b.sortorder:
			return cmp.Compare(a.sortorder, b.sortorder)
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return ids
}

func getUsersCourses(c *call) *exception {
	userID := c.a.int("userid")
	u := c.s.users[userID]
	if u == nil {
		return missingRecord("user", "SELECT * FROM {user} WHERE id = ? AND deleted = ?", userID, 0)
	}
	if !c.admin && c.user.ID != userID && !c.roleToken() {
		return noPermission("View user profiles")
	}
	o := c.o
	o.list()
	for _, id := range c.s.activeCourses(userID, c.now) {
		cr := c.s.courses[id]
		// enrol_get_users_courses(onlyactive): a hidden course only for an
		// enrolled user who may see hidden courses, whoever asks.
		if !cr.Visible && !c.s.seesHidden(userID, id) {
			continue
		}
		// The caller's own checks leave out, silently, the courses it may
		// not look into.
		if c.roleToken() && userID != c.user.ID && (c.validateCourse(id) != nil ||
			!c.can(CapViewParticipants, id) && !c.can(CapEnrolReview, id) || !c.can(CapViewDetails, id)) {
			continue
		}
		comp := c.s.completion[id]
		var uc *Completion
		if comp != nil {
			uc = comp[userID]
		}
		o.obj()
		o.knum("id", id)
		o.kstr("shortname", cr.ShortName)
		o.kstr("fullname", cr.FullName)
		o.kstr("displayname", cr.FullName)
		if c.a.boolean("returnusercount") {
			// count_enrolled_users: every enrolled user, whatever the
			// state of their enrolments.
			o.knum("enrolledusercount", int64(len(c.s.enrol[id].users)))
		}
		o.kstr("idnumber", cr.IDNumber)
		o.kint01("visible", cr.Visible)
		o.kstr("summary", cr.Summary)
		o.knum("summaryformat", 1)
		o.kstr("format", cr.Format)
		o.kstr("courseimage", fmt.Sprintf("%s/pluginfile.php/%d/course/generated/course.svg", c.siteURL, courseContextID(id)))
		o.kbool("showgrades", true)
		o.kstr("lang", "")
		o.kbool("enablecompletion", true)
		o.kbool("completionhascriteria", len(comp) > 0)
		o.kbool("completionusertracked", c.s.tracked(userID, id, c.now))
		o.knum("category", cr.CategoryID)
		// Progress is the share of the course's tracked activities the user
		// completed: null only in a course that tracks none (here, one
		// where no completion carries a progress), 0 for a user who has
		// completed none of them.
		switch {
		case uc != nil && uc.Progress != nil:
			o.kflt("progress", *uc.Progress)
		case c.s.tracksActivities(id):
			o.kflt("progress", 0)
		default:
			o.knull("progress")
		}
		o.kbool("completed", uc != nil && uc.Completed)
		o.knum("startdate", cr.StartDate)
		o.knum("enddate", cr.EndDate)
		o.knum("marker", 0)
		o.knull("lastaccess")
		o.kbool("isfavourite", false)
		o.kbool("hidden", false)
		o.klist("overviewfiles")
		o.end()
		o.kbool("showactivitydates", false)
		o.kbool("showcompletionconditions", true)
		o.knum("timemodified", cr.timemodified)
		o.end()
	}
	o.end()
	return nil
}

// seesHidden reports whether a user may see a hidden course: the site's
// administrator, or a role there whose archetype holds
// moodle/course:viewhiddencourses (teachers and managers, not students).
func (s *Site) seesHidden(userID, courseID int64) bool {
	if u := s.users[userID]; u != nil && u.Username == "admin" {
		return true
	}
	return s.hasRole(courseID, userID, "manager", "coursecreator", "editingteacher", "teacher")
}

// tracked reports whether a user's completion is tracked in a course: an
// active enrolment with a role holding moodle/course:isincompletionreports
// (students).
func (s *Site) tracked(userID, courseID, now int64) bool {
	m := s.member(courseID, userID)
	return m != nil && m.isActive(now) && s.hasRole(courseID, userID, "student")
}

// hasRole reports whether a user holds one of the roles (by shortname) in
// a course.
func (s *Site) hasRole(courseID, userID int64, shortnames ...string) bool {
	m := s.member(courseID, userID)
	if m == nil {
		return false
	}
	for _, r := range m.roles {
		if role := s.roleByID[r]; role != nil && slices.Contains(shortnames, role.ShortName) {
			return true
		}
	}
	return false
}

func getEnrolmentMethods(c *call) *exception {
	courseID := c.a.int("courseid")
	if c.s.courses[courseID] == nil {
		return missingRecord("course", "SELECT * FROM {course} WHERE id = ?", courseID)
	}
	o := c.o
	o.list()
	for _, in := range c.s.instances[courseID] {
		if c.s.disabled[CourseMethod{courseID, in.method}] {
			continue // enrol_get_instances(courseid, enabled only)
		}
		var name string
		switch in.method {
		case "self":
			name = "Self enrolment (Student)"
		case "guest":
			name = "Guest access"
		default:
			// Only plugins with get_enrol_info (self, guest) are listed.
			continue
		}
		o.obj()
		o.knum("id", in.id)
		o.knum("courseid", courseID)
		o.kstr("type", in.method)
		o.kstr("name", name)
		o.kbool("status", true)
		o.end()
	}
	o.end()
	return nil
}

// assignableInCourse: roles whose archetype may be assigned in a course
// context (manager, teachers, student) and custom roles.
func (s *Site) assignableInCourse(roleID int64) bool {
	r := s.roleByID[roleID]
	if r == nil {
		return false
	}
	switch r.ShortName {
	case "coursecreator", "guest", "user", "frontpage":
		return false
	}
	return true
}

// saveMember captures a user's place in a course so a failed call can put
// it back exactly.
func (s *Site) saveMember(courseID, userID int64) func() {
	old := s.member(courseID, userID)
	if old == nil {
		return func() {
			if ce := s.enrol[courseID]; ce != nil && ce.users[userID] != nil {
				delete(ce.users, userID)
				ce.ids = deleteSorted(ce.ids, userID)
				delete(s.userCourses[userID], courseID)
			}
		}
	}
	enrols := make([]*Enrolment, len(old.enrols))
	for i, e := range old.enrols {
		cp := *e
		enrols[i] = &cp
	}
	roles := slices.Clone(old.roles)
	return func() {
		m := s.member(courseID, userID)
		m.enrols, m.roles = enrols, roles
	}
}

func manualEnrol(c *call) *exception {
	for _, in := range c.a.items("enrolments") {
		courseID, userID, roleID := in.int("courseid"), in.int("userid"), in.int("roleid")
		if c.s.courses[courseID] == nil {
			return invalidParam("Context does not exist")
		}
		if !c.admin {
			if ex := c.validateCourse(courseID); ex != nil {
				return ex
			}
		}
		if ex := c.require(CapManualEnrol, courseID); ex != nil {
			return ex
		}
		if !c.s.assignableInCourse(roleID) {
			return moodleException("wsusercannotassign", fmt.Sprintf(
				"You don't have the permission to assign this role (%d) to this user (%d) in this course (%d).", roleID, userID, courseID))
		}
		if c.s.users[userID] == nil {
			return &exception{class: "TypeError", message: `core\user::get_name_placeholders(): Argument #1 ($user) must be of type stdClass, bool given, called in /var/www/moodle/lib/enrollib.php on line 3674`}
		}
		c.onUndo(c.s.saveMember(courseID, userID))
		c.s.putEnrolment(Enrolment{CourseID: courseID, UserID: userID, RoleIDs: []int64{roleID}, Method: "manual",
			Suspended: in.int("suspend") != 0, TimeStart: in.int("timestart"), TimeEnd: in.int("timeend")})
	}
	return nil
}

// tracksActivities reports whether a course has activities with completion
// tracking: in a State, whether any of its completions carries a progress.
func (s *Site) tracksActivities(courseID int64) bool {
	for _, c := range s.completion[courseID] {
		if c.Progress != nil {
			return true
		}
	}
	return false
}
