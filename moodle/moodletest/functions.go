package moodletest

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// function is one simulated external function: its parameter description
// (Moodle 4.5's), whether it writes, and its implementation, which writes
// its result in the order of Moodle's return description.
type function struct {
	params *pdesc
	write  bool
	run    func(c *call) *exception
}

// functions are the web-service functions the simulator answers.
var functions map[string]*function

// unsimulated exist in Moodle 4.5 but are not simulated: a token whose
// service lacks them gets accessexception, as on a real site. Note that
// core_role_get_all_roles is not among them: Moodle 4.5 has no such
// function (the recorded sample is invalidrecord), so roles are harvested
// from enrolments.
var unsimulated = map[string]bool{
	"gradereport_user_get_grades_table": true, "enrol_manual_unenrol_users": true,
	"core_role_assign_roles": true, "core_role_unassign_roles": true, "core_user_update_users": true,
	"core_course_update_courses": true, "core_course_search_courses": true, "core_course_delete_courses": true,
	"core_completion_get_activities_completion_status": true, "core_grades_get_gradeitems": true,
	"core_user_get_course_user_profiles": true, "core_user_delete_users": true,
	"core_group_get_groups": true, "core_cohort_get_cohorts": true,
}

// FunctionNames lists the functions the simulator answers, sorted.
func FunctionNames() []string { return sortedKeys(functions) }

func init() {
	functions = map[string]*function{
		"core_webservice_get_site_info": {
			params: single(f("serviceshortnames", multiple(val("alpha")).dflt([]any{}))),
			run:    siteInfo,
		},
		"core_course_get_categories": {
			params: single(
				f("criteria", multiple(single(f("key", val("alpha")), f("value", val("raw")))).opt()),
				f("addsubcategories", val("bool").dflt(true))),
			run: getCategories,
		},
		"core_course_get_courses": {
			params: single(f("options", single(f("ids", multiple(val("int")).opt())).dflt(map[string]any{}))),
			run:    getCourses,
		},
		"core_course_get_courses_by_field": {
			params: single(f("field", val("alpha").dflt("")), f("value", val("raw").dflt(""))),
			run:    getCoursesByField,
		},
		"core_course_create_courses": {
			params: single(f("courses", multiple(single(
				f("fullname", val("text")), f("shortname", val("text")), f("categoryid", val("int")),
				f("idnumber", val("raw").opt()), f("summary", val("raw").opt()),
				f("summaryformat", val("int").dflt(int64(1))), f("format", val("plugin").dflt("topics")),
				f("showgrades", val("int").opt()), f("newsitems", val("int").opt()),
				f("startdate", val("int").opt()), f("enddate", val("int").opt()),
				f("numsections", val("int").opt()), f("maxbytes", val("int").opt()),
				f("showreports", val("int").opt()), f("visible", val("int").opt()),
				f("hiddensections", val("int").opt()), f("groupmode", val("int").opt()),
				f("groupmodeforce", val("int").opt()), f("defaultgroupingid", val("int").opt()),
				f("enablecompletion", val("int").opt()), f("completionnotify", val("int").opt()),
				f("lang", val("safedir").opt()), f("forcetheme", val("plugin").opt()),
				f("courseformatoptions", multiple(single(f("name", val("alpha")), f("value", val("raw")))).opt()),
				f("customfields", multiple(single(f("shortname", val("alphanumext")), f("value", val("raw")))).opt()),
			)))),
			write: true,
			run:   createCourses,
		},
		"core_user_get_users": {
			params: single(f("criteria", multiple(single(f("key", val("alpha")), f("value", val("raw")))))),
			run:    getUsers,
		},
		"core_user_get_users_by_field": {
			params: single(f("field", val("alpha")), f("values", multiple(val("raw")))),
			run:    getUsersByField,
		},
		"core_user_create_users": {
			params: single(f("users", multiple(single(
				f("createpassword", val("bool").opt()), f("username", val("username")),
				f("auth", val("plugin").dflt("manual")), f("password", val("raw").opt()),
				f("firstname", val("notags")), f("lastname", val("notags")), f("email", val("raw")),
				f("maildisplay", val("int").opt()), f("city", val("notags").opt()), f("country", val("alpha").opt()),
				f("timezone", val("timezone").opt()), f("description", val("raw").opt()),
				f("firstnamephonetic", val("notags").opt()), f("lastnamephonetic", val("notags").opt()),
				f("middlename", val("notags").opt()), f("alternatename", val("notags").opt()),
				f("interests", val("text").opt()), f("idnumber", val("raw").dflt("")),
				f("institution", val("text").opt()), f("department", val("text").opt()),
				f("phone1", val("notags").opt()), f("phone2", val("notags").opt()), f("address", val("text").opt()),
				f("lang", val("lang").opt()), f("calendartype", val("plugin").opt()), f("theme", val("plugin").opt()),
				f("mailformat", val("int").opt()),
				f("customfields", multiple(single(f("type", val("alpha")), f("value", val("raw")))).opt()),
				f("preferences", multiple(single(f("type", val("raw")), f("value", val("raw")))).opt()),
			)))),
			write: true,
			run:   createUsers,
		},
		"core_enrol_get_enrolled_users": {
			params: single(f("courseid", val("int")),
				f("options", multiple(single(f("name", val("alphanumext")), f("value", val("raw")))).dflt([]any{}))),
			run: getEnrolledUsers,
		},
		"core_enrol_get_users_courses": {
			params: single(f("userid", val("int")), f("returnusercount", val("bool").dflt(true))),
			run:    getUsersCourses,
		},
		"core_enrol_get_course_enrolment_methods": {
			params: single(f("courseid", val("int"))),
			run:    getEnrolmentMethods,
		},
		"enrol_manual_enrol_users": {
			params: single(f("enrolments", multiple(single(
				f("roleid", val("int")), f("userid", val("int")), f("courseid", val("int")),
				f("timestart", val("int").opt()), f("timeend", val("int").opt()), f("suspend", val("int").opt()),
			)))),
			write: true,
			run:   manualEnrol,
		},
		"gradereport_user_get_grade_items": {
			params: single(f("courseid", val("int")), f("userid", val("int").dflt(int64(0))), f("groupid", val("int").dflt(int64(0)))),
			run:    getGradeItems,
		},
		"core_completion_get_course_completion_status": {
			params: single(f("courseid", val("int")), f("userid", val("int"))),
			run:    getCompletionStatus,
		},
		"core_group_get_course_groups": {
			params: single(f("courseid", val("int"))),
			run:    getCourseGroups,
		},
		"core_group_get_course_groupings": {
			params: single(f("courseid", val("int"))),
			run:    getCourseGroupings,
		},
		"core_group_get_groupings": {
			params: single(f("groupingids", multiple(val("int"))), f("returngroups", val("bool").dflt(false))),
			run:    getGroupings,
		},
		"core_group_get_group_members": {
			params: single(f("groupids", multiple(val("int")))),
			run:    getGroupMembers,
		},
		"core_group_create_groups": {
			params: single(f("groups", multiple(single(
				f("courseid", val("int")), f("name", val("text")), f("description", val("raw")),
				f("descriptionformat", val("int").dflt(int64(1))), f("enrolmentkey", val("raw").opt()),
				f("idnumber", val("raw").opt()), f("visibility", val("int").opt()), f("participation", val("bool").opt()),
				f("customfields", multiple(single(f("shortname", val("alphanumext")), f("value", val("raw")))).opt()),
			)))),
			write: true,
			run:   createGroups,
		},
		"core_group_create_groupings": {
			params: single(f("groupings", multiple(single(
				f("courseid", val("int")), f("name", val("text")), f("description", val("raw")),
				f("descriptionformat", val("int").dflt(int64(1))), f("idnumber", val("raw").opt()),
				f("customfields", multiple(single(f("shortname", val("alphanumext")), f("value", val("raw")))).opt()),
			)))),
			write: true,
			run:   createGroupings,
		},
		"core_group_assign_grouping": {
			params: single(f("assignments", multiple(single(f("groupingid", val("int")), f("groupid", val("int")))))),
			write:  true,
			run:    func(c *call) *exception { return groupingAssignments(c, true) },
		},
		"core_group_unassign_grouping": {
			params: single(f("unassignments", multiple(single(f("groupingid", val("int")), f("groupid", val("int")))))),
			write:  true,
			run:    func(c *call) *exception { return groupingAssignments(c, false) },
		},
		"core_group_add_group_members": {
			params: single(f("members", multiple(single(f("groupid", val("int")), f("userid", val("int")))))),
			write:  true,
			run:    func(c *call) *exception { return groupMembers(c, true) },
		},
		"core_group_delete_group_members": {
			params: single(f("members", multiple(single(f("groupid", val("int")), f("userid", val("int")))))),
			write:  true,
			run:    func(c *call) *exception { return groupMembers(c, false) },
		},
		"core_group_delete_groups": {
			params: single(f("groupids", multiple(val("int")))),
			write:  true,
			run:    deleteGroups,
		},
		"core_group_delete_groupings": {
			params: single(f("groupingids", multiple(val("int")))),
			write:  true,
			run:    deleteGroupings,
		},
		"core_group_update_groups": {
			params: single(f("groups", multiple(single(
				f("id", val("int")), f("name", val("text")), f("description", val("raw").opt()),
				f("descriptionformat", val("int").dflt(int64(1))), f("enrolmentkey", val("raw").opt()),
				f("idnumber", val("raw").opt()), f("visibility", val("int").opt()), f("participation", val("bool").opt()),
				f("customfields", multiple(single(f("shortname", val("alphanumext")), f("value", val("raw")))).opt()),
			)))),
			write: true,
			run:   updateGroups,
		},
		"core_group_update_groupings": {
			params: single(f("groupings", multiple(single(
				f("id", val("int")), f("name", val("text")), f("description", val("raw")),
				f("descriptionformat", val("int").dflt(int64(1))), f("idnumber", val("raw").opt()),
				f("customfields", multiple(single(f("shortname", val("alphanumext")), f("value", val("raw")))).opt()),
			)))),
			write: true,
			run:   updateGroupings,
		},
	}
}

// can decides a capability in a course: the administrator holds all, a
// token's system role holds its own (inherited by every course), and a
// user's roles in the course give what Moodle's archetypes give.
func (c *call) can(capability string, courseID int64) bool {
	if c.has(capability) {
		return true
	}
	m := c.s.member(courseID, c.user.ID)
	if m == nil {
		return false
	}
	for _, r := range m.roles {
		role := c.s.roleByID[r]
		if role == nil {
			continue
		}
		switch role.ShortName {
		case "manager", "editingteacher":
			return true
		case "teacher":
			if capability == CapViewParticipants || capability == CapGradeViewAll {
				return true
			}
		case "student":
			if capability == CapViewParticipants {
				return true
			}
		}
	}
	return false
}

// validateCourse is external_api::validate_context for a course, wrapped
// the way group and enrol functions report it: require_login, which lets in
// those actively enrolled and those who may view courses without
// participation (hidden ones only with moodle/course:viewhiddencourses).
func (c *call) validateCourse(courseID int64) *exception {
	cr := c.s.courses[courseID]
	if cr == nil {
		return courseContextError(courseID, "Invalid parameter value detected")
	}
	if c.admin {
		return nil
	}
	if m := c.s.member(courseID, c.user.ID); m != nil && m.isActive(c.now) {
		return nil
	}
	if c.has(CapCourseView) && (cr.Visible || c.has(CapViewHiddenCourses)) {
		return nil
	}
	return courseContextError(courseID, "Course or activity not accessible.")
}

// manageGroups is what every group function checks first, as Moodle does:
// the course context, then the capability to manage groups in it.
func (c *call) manageGroups(courseID int64) *exception {
	if ex := c.validateCourse(courseID); ex != nil {
		return ex
	}
	return c.require(CapManageGroups, courseID)
}

func (c *call) require(capability string, courseID int64) *exception {
	if c.can(capability, courseID) {
		return nil
	}
	return noPermission(capName(capability))
}

// capName is a capability's name as Moodle's errors quote it.
func capName(capability string) string {
	if n, ok := capNames[capability]; ok {
		return n
	}
	return capability
}

func (c *call) profileImage(small bool) string {
	f := "f1"
	if small {
		f = "f2"
	}
	return c.siteURL + "/theme/image.php/boost/core/" + c.s.themeRev + "/u/" + f
}

func siteInfo(c *call) *exception {
	o := c.o
	u := c.user
	if u == nil {
		u = &User{ID: 2, Username: "admin", FirstName: "Admin", LastName: "User"}
	}
	o.obj()
	o.kstr("sitename", c.s.siteName)
	o.kstr("username", u.Username)
	o.kstr("firstname", u.FirstName)
	o.kstr("lastname", u.LastName)
	o.kstr("fullname", fullName(u))
	o.kstr("lang", "en")
	o.knum("userid", u.ID)
	o.kstr("siteurl", c.siteURL)
	o.kstr("userpictureurl", c.profileImage(false))
	o.klist("functions")
	names := c.tok.Functions
	if names == nil {
		names = FunctionNames()
	}
	for _, n := range names {
		if functions[n] == nil && !unsimulated[n] {
			continue
		}
		o.obj()
		o.kstr("name", n)
		o.kstr("version", "2024100700")
		o.end()
	}
	o.end()
	o.knum("downloadfiles", 1)
	o.knum("uploadfiles", 0)
	o.kstr("release", c.s.release)
	o.kstr("version", "2024100700")
	o.kstr("mobilecssurl", "")
	o.klist("advancedfeatures")
	for _, af := range []struct {
		name string
		v    int64
	}{{"usecomments", 1}, {"usetags", 1}, {"enablenotes", 1}, {"messaging", 1}, {"enableblogs", 1},
		{"enablecompletion", 1}, {"enablebadges", 1}, {"messagingallusers", 0}, {"enablecustomreports", 1},
		{"enableglobalsearch", 0}, {"mnet_dispatcher_mode", 0}, {"enablecompetencies", 1}} {
		o.obj()
		o.kstr("name", af.name)
		o.knum("value", af.v)
		o.end()
	}
	o.end()
	o.kbool("usercanmanageownfiles", true)
	o.knum("userquota", 0)
	o.knum("usermaxuploadfilesize", -1)
	o.knum("userhomepage", 1)
	o.kstr("userprivateaccesskey", "0123456789abcdef0123456789abcdef")
	o.knum("siteid", siteCourseID)
	o.kstr("sitecalendartype", "gregorian")
	o.kstr("usercalendartype", "gregorian")
	o.kbool("userissiteadmin", c.admin)
	o.kstr("theme", "boost")
	o.knum("limitconcurrentlogins", 0)
	o.knum("policyagreed", 0)
	o.end()
	return nil
}

func getCategories(c *call) *exception {
	ids := c.s.catOrder
	if crit := c.a.items("criteria"); len(crit) > 0 {
		match := map[int64]bool{}
		first := true
		for _, cr := range crit {
			sel := map[int64]bool{}
			key, value := cr.str("key"), cr.str("value")
			for _, id := range c.s.catOrder {
				cat := c.s.cats[id]
				var ok bool
				switch key {
				case "id":
					ok = strconv.FormatInt(id, 10) == value
				case "ids":
					ok = slices.Contains(strings.Split(value, ","), strconv.FormatInt(id, 10))
				case "name":
					ok = cat.Name == value
				case "parent":
					ok = strconv.FormatInt(cat.Parent, 10) == value
				case "idnumber":
					ok = cat.IDNumber == value
				case "visible":
					ok = (value == "1") == cat.Visible
				case "theme":
					ok = value == ""
				default:
					return &exception{`core\exception\moodle_exception`, "invalidparameter", "Invalid parameter value detected",
						"You can not search on this criteria: " + key}
				}
				if ok {
					sel[id] = true
				}
			}
			for id := range match {
				if !sel[id] {
					delete(match, id)
				}
			}
			if first {
				match, first = sel, false
			}
		}
		if c.a.boolean("addsubcategories") {
			for _, id := range c.s.catOrder {
				for p := c.s.cats[id].Parent; p != 0; p = c.s.cats[p].Parent {
					if match[p] {
						match[id] = true
						break
					}
				}
			}
		}
		var sel []int64
		for _, id := range c.s.catOrder {
			if match[id] {
				sel = append(sel, id)
			}
		}
		ids = sel
	}
	o := c.o
	o.list()
	for _, id := range ids {
		cat := c.s.cats[id]
		if !cat.Visible && !c.has(CapViewHiddenCategories) {
			continue
		}
		o.obj()
		o.knum("id", id)
		o.kstr("name", cat.Name)
		if c.has(CapManageCategory) {
			o.kstr("idnumber", cat.IDNumber)
		}
		o.kstr("description", cat.Description)
		o.knum("descriptionformat", 1)
		o.knum("parent", cat.Parent)
		o.knum("sortorder", cat.sortorder)
		o.knum("coursecount", int64(len(c.s.catCourses[id])))
		if c.has(CapManageCategory) {
			o.kint01("visible", cat.Visible)
			o.kint01("visibleold", cat.Visible)
			o.knum("timemodified", cat.timemodified)
		}
		o.knum("depth", int64(cat.depth))
		o.kstr("path", cat.path)
		if c.has(CapManageCategory) {
			o.kstr("theme", "")
		}
		o.end()
	}
	o.end()
	return nil
}

// coursesBySortOrder orders course ids as Moodle's course table sorts them.
func (s *Site) coursesBySortOrder(ids []int64) []int64 {
	sort.Slice(ids, func(i, j int) bool {
		a, b := s.courses[ids[i]], s.courses[ids[j]]
		if a.sortorder != b.sortorder {
			return a.sortorder < b.sortorder
		}
		return a.ID < b.ID
	})
	return ids
}

func formatOptions(o out, cr *course, withIndentation bool) {
	o.klist("courseformatoptions")
	if cr.Format != "site" {
		o.obj()
		o.kstr("name", "hiddensections")
		o.knum("value", 1)
		o.end()
		o.obj()
		o.kstr("name", "coursedisplay")
		o.knum("value", 0)
		o.end()
		if withIndentation {
			o.obj()
			o.kstr("name", "indentation")
			o.kstr("value", "1")
			o.end()
		}
	}
	o.end()
}

func getCourses(c *call) *exception {
	opts := args(c.a["options"].(map[string]any))
	var ids []int64
	if want := opts.ints("ids"); len(want) > 0 {
		seen := map[int64]bool{}
		for _, id := range want {
			if c.s.courses[id] != nil && !seen[id] {
				ids = append(ids, id)
				seen[id] = true
			}
		}
	} else {
		ids = sortedKeys(c.s.courses)
	}
	ids = c.s.coursesBySortOrder(ids)
	for _, id := range ids {
		if id != siteCourseID {
			if ex := c.validateCourse(id); ex != nil {
				return ex
			}
		}
	}
	o := c.o
	o.list()
	for _, id := range ids {
		cr := c.s.courses[id]
		site := cr.Format == "site"
		o.obj()
		o.knum("id", id)
		o.kstr("shortname", cr.ShortName)
		o.knum("categoryid", cr.CategoryID)
		if c.has(CapCourseUpdate) {
			o.knum("categorysortorder", cr.sortorder)
		}
		o.kstr("fullname", cr.FullName)
		o.kstr("displayname", cr.FullName)
		if c.has(CapCourseUpdate) {
			o.kstr("idnumber", cr.IDNumber)
		}
		o.kstr("summary", cr.Summary)
		o.knum("summaryformat", 1)
		o.kstr("format", cr.Format)
		if c.has(CapCourseUpdate) {
			o.knum("showgrades", 1)
			o.knum("newsitems", 1)
		}
		o.knum("startdate", cr.StartDate)
		o.knum("enddate", cr.EndDate)
		if c.has(CapCourseUpdate) {
			if site {
				o.knum("numsections", 1)
			} else {
				o.knum("numsections", 4)
			}
			o.knum("maxbytes", 0)
			o.knum("showreports", 0)
			o.kint01("visible", cr.Visible)
			if !site {
				o.knum("hiddensections", 1)
			}
			o.knum("groupmode", 0)
			o.knum("groupmodeforce", 0)
			o.knum("defaultgroupingid", 0)
			o.knum("timecreated", cr.timecreated)
			o.knum("timemodified", cr.timemodified)
			o.kint01("enablecompletion", !site)
			o.knum("completionnotify", 0)
			o.kstr("lang", "")
			o.kstr("forcetheme", "")
			formatOptions(o, cr, false)
		}
		o.kbool("showactivitydates", false)
		o.kbool("showcompletionconditions", !site)
		o.end()
	}
	o.end()
	return nil
}

func getCoursesByField(c *call) *exception {
	field, value := c.a.str("field"), c.a.str("value")
	var ids []int64
	switch field {
	case "":
		ids = sortedKeys(c.s.courses)
	case "id":
		if n, err := strconv.ParseInt(value, 10, 64); err == nil && c.s.courses[n] != nil {
			ids = []int64{n}
		}
	case "ids":
		seen := map[int64]bool{}
		for _, p := range strings.Split(value, ",") {
			if n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64); err == nil && c.s.courses[n] != nil && !seen[n] {
				ids = append(ids, n)
				seen[n] = true
			}
		}
		slices.Sort(ids)
	case "shortname":
		if id, ok := c.s.courseByShort[value]; ok {
			ids = []int64{id}
		}
	case "idnumber":
		if id, ok := c.s.courseByIDNumber[value]; ok && value != "" {
			ids = []int64{id}
		} else if value == "" {
			for _, id := range sortedKeys(c.s.courses) {
				if c.s.courses[id].IDNumber == "" {
					ids = append(ids, id)
				}
			}
		}
	case "category":
		if n, err := strconv.ParseInt(value, 10, 64); err == nil {
			ids = slices.Clone(c.s.catCourses[n])
			slices.Sort(ids)
		}
	case "sectionid":
	default:
		return invalidParam("Invalid field name")
	}
	o := c.o
	o.obj()
	o.klist("courses")
	for _, id := range ids {
		cr := c.s.courses[id]
		if !cr.Visible && !c.has(CapViewHiddenCourses) && !c.has(CapCourseUpdate) {
			continue
		}
		site := cr.Format == "site"
		o.obj()
		o.knum("id", id)
		o.kstr("fullname", cr.FullName)
		o.kstr("displayname", cr.FullName)
		o.kstr("shortname", cr.ShortName)
		o.kstr("courseimage", fmt.Sprintf("%s/pluginfile.php/%d/course/generated/course.svg", c.siteURL, courseContextID(id)))
		o.knum("categoryid", cr.CategoryID)
		catName := ""
		if cat := c.s.cats[cr.CategoryID]; cat != nil {
			catName = cat.Name
		}
		o.kstr("categoryname", catName)
		o.knum("sortorder", cr.sortorder)
		o.kstr("summary", cr.Summary)
		o.knum("summaryformat", 1)
		o.klist("summaryfiles")
		o.end()
		o.klist("overviewfiles")
		o.end()
		o.kbool("showactivitydates", false)
		o.kbool("showcompletionconditions", !site)
		o.klist("contacts")
		for _, uid := range c.s.contacts(id) {
			o.obj()
			o.knum("id", uid)
			o.kstr("fullname", fullName(c.s.users[uid]))
			o.end()
		}
		o.end()
		o.klist("enrollmentmethods")
		for _, in := range c.s.instances[id] {
			o.str(in.method)
		}
		o.end()
		o.kstr("idnumber", cr.IDNumber)
		o.kstr("format", cr.Format)
		o.knum("showgrades", 1)
		o.knum("newsitems", 1)
		o.knum("startdate", cr.StartDate)
		o.knum("enddate", cr.EndDate)
		o.knum("maxbytes", 0)
		o.knum("showreports", 0)
		o.kint01("visible", cr.Visible)
		o.knum("groupmode", 0)
		o.knum("groupmodeforce", 0)
		o.knum("defaultgroupingid", 0)
		o.kint01("enablecompletion", !site)
		o.knum("completionnotify", 0)
		o.kstr("lang", "")
		o.kstr("theme", "")
		o.knum("marker", 0)
		o.knum("legacyfiles", 0)
		o.kstr("calendartype", "")
		o.knum("timecreated", cr.timecreated)
		o.knum("timemodified", cr.timemodified)
		o.knum("requested", 0)
		o.knum("cacherev", cr.timemodified)
		o.klist("filters")
		for _, fl := range []string{"displayh5p", "activitynames", "mathjaxloader", "emoticon", "urltolink", "mediaplugin"} {
			o.obj()
			o.kstr("filter", fl)
			o.knum("localstate", 0)
			o.knum("inheritedstate", 1)
			o.end()
		}
		o.end()
		formatOptions(o, cr, true)
		o.end()
	}
	o.end()
	o.klist("warnings")
	o.end()
	o.end()
	return nil
}

// courseContextID invents the context id of a course for file URLs.
func courseContextID(courseID int64) int64 { return 700 + courseID*50 }

// contacts are a course's editing teachers with an active enrolment,
// ordered by last and first name ($CFG->coursecontact).
func (s *Site) contacts(courseID int64) []int64 {
	ce := s.enrol[courseID]
	if ce == nil {
		return nil
	}
	now := s.now().Unix()
	var ids []int64
	for _, uid := range ce.ids {
		m := ce.users[uid]
		if !m.isActive(now) {
			continue
		}
		for _, r := range m.roles {
			if role := s.roleByID[r]; role != nil && role.ShortName == "editingteacher" {
				ids = append(ids, uid)
				break
			}
		}
	}
	sort.SliceStable(ids, func(i, j int) bool {
		a, b := s.users[ids[i]], s.users[ids[j]]
		if a.LastName != b.LastName {
			return a.LastName < b.LastName
		}
		return a.FirstName < b.FirstName
	})
	return ids
}

// userView says which user details a call may show and in what shape.
type userView struct {
	course    *course         // the course context, for get_enrolled_users
	fields    map[string]bool // userfields option; nil means every field
	display   bool            // custom fields carry displayvalue
	courseCtx bool
	groups    *[]*group // the course's groups by name, computed once per call
}

// want says whether the userfields option asks for k. Moodle always adds
// id and fullname (user_get_user_details), whatever was asked.
func (v userView) want(k string) bool { return v.fields == nil || v.fields[k] || k == "fullname" }

// writeUser writes user_get_user_details' answer in the order of the
// return description, omitting what Moodle omits when empty and what the
// web-service user may not see (perms).
func (c *call) writeUser(u *User, v userView, p userPerms) {
	o := c.o
	o.obj()
	o.knum("id", u.ID)
	if v.want("username") && p.details {
		o.kstr("username", u.Username)
	}
	if v.want("firstname") && p.names {
		o.kstr("firstname", u.FirstName)
	}
	if v.want("lastname") && p.names {
		o.kstr("lastname", u.LastName)
	}
	if v.want("fullname") {
		o.kstr("fullname", fullName(u))
	}
	if v.want("email") && p.email {
		o.kstr("email", u.Email)
	}
	if v.want("department") && p.details {
		o.kstr("department", u.Department)
	}
	if v.want("institution") && p.details && u.Institution != "" {
		o.kstr("institution", u.Institution)
	}
	if v.want("idnumber") && p.details && u.IDNumber != "" {
		o.kstr("idnumber", u.IDNumber)
	}
	if v.want("firstaccess") {
		o.knum("firstaccess", 0)
	}
	if v.want("lastaccess") {
		o.knum("lastaccess", 0)
	}
	if v.courseCtx && v.want("lastcourseaccess") {
		o.knum("lastcourseaccess", 0)
	}
	if p.account {
		o.kstr("auth", u.Auth)
	}
	if p.settings {
		o.kbool("suspended", u.Suspended)
	}
	if p.account {
		o.kbool("confirmed", true)
		o.kstr("lang", "en")
		o.kstr("theme", "")
	}
	if p.settings {
		o.kstr("timezone", "99")
	}
	if p.account {
		o.knum("mailformat", 1)
		o.knum("trackforums", 0)
	}
	// The guest's description; with profilesforenrolledusersonly (on by
	// default) only the administrator sees the description of a user who
	// holds no role anywhere, as the guest does.
	if u.Username == "guest" && u.ID == 1 && v.want("description") && (c.admin || c.self(u)) {
		o.kstr("description", "This user is a special user that allows read-only access to some courses.")
		o.knum("descriptionformat", 1)
	}
	if v.want("city") && u.City != "" {
		o.kstr("city", u.City)
	}
	if v.want("country") && u.Country != "" {
		o.kstr("country", u.Country)
	}
	if v.want("profileimageurlsmall") {
		o.kstr("profileimageurlsmall", c.profileImage(true))
	}
	if v.want("profileimageurl") {
		o.kstr("profileimageurl", c.profileImage(false))
	}
	if v.want("customfields") && p.details {
		c.writeCustomFields(u, v.display)
	}
	if v.courseCtx {
		c.writeCourseMembership(u, v)
	}
	o.end()
}

// detail is the value of key in the details the web-service user gets of
// u, "" when they are not shown: Moodle returns a user found by a
// criterion only when the searched field is in the details and not empty.
func detail(u *User, p userPerms, key string) string {
	switch key {
	case "id":
		return strconv.FormatInt(u.ID, 10)
	case "firstname", "lastname":
		if p.names {
			return map[string]string{"firstname": u.FirstName, "lastname": u.LastName}[key]
		}
	case "email":
		if p.email {
			return u.Email
		}
	case "username", "idnumber":
		if p.details {
			return map[string]string{"username": u.Username, "idnumber": u.IDNumber}[key]
		}
	case "auth":
		if p.account {
			return u.Auth
		}
	}
	return ""
}

func (c *call) writeCustomFields(u *User, display bool) {
	started := false
	for _, pf := range c.s.fields {
		value := u.CustomFields[pf.ShortName]
		if value == "" {
			continue
		}
		if !started {
			c.o.klist("customfields")
			started = true
		}
		c.o.obj()
		c.o.kstr("type", pf.Type)
		c.o.kstr("value", value)
		if display {
			dv := value
			switch pf.Type {
			case "checkbox":
				dv = map[bool]string{true: "Yes", false: "No"}[value == "1"]
			case "textarea":
				// format_text of a plain-text area.
				dv = `<div class="no-overflow"><div class="text_to_html">` + strings.ReplaceAll(value, "\n", "<br />\n") + `</div></div>`
			}
			c.o.kstr("displayvalue", dv)
		}
		c.o.kstr("name", pf.Name)
		c.o.kstr("shortname", pf.ShortName)
		c.o.end()
	}
	if started {
		c.o.end()
	}
}

func getUsers(c *call) *exception {
	o := c.o
	type crit struct{ key, value string }
	var crits []crit
	var warnings []warning
	for _, cr := range c.a.items("criteria") {
		key := cr.str("key")
		switch key {
		case "id", "lastname", "firstname", "idnumber", "username", "email", "auth":
			crits = append(crits, crit{key, cr.str("value")})
		default:
			warnings = append(warnings, warning{item: key, code: "invalidfieldparameter",
				message: "The search key '" + key + "' is not supported, look at the web service documentation"})
		}
	}
	o.obj()
	o.klist("users")
	for _, id := range c.s.userIDs {
		u := c.s.users[id]
		ok := true
		for _, cr := range crits {
			switch cr.key {
			case "id":
				ok = strconv.FormatInt(u.ID, 10) == cr.value
			case "idnumber":
				ok = u.IDNumber == cr.value
			case "username":
				ok = u.Username == cr.value
			case "auth":
				ok = u.Auth == cr.value
			case "lastname":
				ok = like(u.LastName, cr.value)
			case "firstname":
				ok = like(u.FirstName, cr.value)
			case "email":
				ok = like(u.Email, cr.value)
			}
			if !ok {
				break
			}
		}
		if !ok {
			continue
		}
		// user_get_user_details, then the searched fields must be in it.
		p := c.perms(u, false)
		if !p.visible || slices.ContainsFunc(crits, func(cr crit) bool { return phpEmpty(detail(u, p, cr.key)) }) {
			continue
		}
		c.writeUser(u, userView{display: true}, p)
	}
	o.end()
	writeWarnings(o, warnings)
	o.end()
	return nil
}

// like is SQL LIKE, case-insensitive, with % and _ wildcards.
func like(s, pattern string) bool {
	s, pattern = strings.ToLower(s), strings.ToLower(pattern)
	var match func(s, p string) bool
	match = func(s, p string) bool {
		for p != "" {
			switch p[0] {
			case '%':
				for i := 0; i <= len(s); i++ {
					if match(s[i:], p[1:]) {
						return true
					}
				}
				return false
			case '_':
				if s == "" {
					return false
				}
				s, p = s[1:], p[1:]
			default:
				if s == "" || s[0] != p[0] {
					return false
				}
				s, p = s[1:], p[1:]
			}
		}
		return s == ""
	}
	return match(s, pattern)
}

type warning struct {
	item    string
	itemID  int64
	code    string
	message string
}

func writeWarnings(o out, ws []warning) {
	o.klist("warnings")
	for _, w := range ws {
		o.obj()
		if w.item != "" {
			o.kstr("item", w.item)
		}
		if w.itemID != 0 {
			o.knum("itemid", w.itemID)
		}
		o.kstr("warningcode", w.code)
		o.kstr("message", w.message)
		o.end()
	}
	o.end()
}

func getUsersByField(c *call) *exception {
	field := c.a.str("field")
	switch field {
	case "id", "idnumber", "username", "email":
	default:
		return codingError("invalid field parameter", "The search field '"+field+"' is not supported, look at the web service documentation")
	}
	found := map[int64]bool{}
	for _, v := range c.a.list("values") {
		value, _ := v.(string)
		switch field {
		case "id":
			if n, err := strconv.ParseInt(value, 10, 64); err == nil && c.s.users[n] != nil {
				found[n] = true
			}
		case "username":
			if id, ok := c.s.userByName[strings.ToLower(strings.TrimSpace(value))]; ok {
				found[id] = true
			}
		case "idnumber":
			for _, id := range c.s.usersByIDNumber[value] {
				found[id] = true
			}
		case "email":
			for _, id := range c.s.userIDs {
				if strings.EqualFold(c.s.users[id].Email, value) {
					found[id] = true
				}
			}
		}
	}
	o := c.o
	o.list()
	for _, id := range sortedKeys(found) {
		u := c.s.users[id]
		p := c.perms(u, false)
		// Only users whose searched field the caller may see (and is not
		// empty) are returned.
		if !p.visible || phpEmpty(detail(u, p, field)) {
			continue
		}
		c.writeUser(u, userView{display: true}, p)
	}
	o.end()
	return nil
}

// passwordProblems applies Moodle's default password policy.
func passwordProblems(p string) string {
	var b strings.Builder
	if len([]rune(p)) < 8 {
		b.WriteString("<div>Passwords must be at least 8 characters long.</div>")
	}
	count := func(ok func(rune) bool) int {
		n := 0
		for _, r := range p {
			if ok(r) {
				n++
			}
		}
		return n
	}
	if count(func(r rune) bool { return r >= '0' && r <= '9' }) < 1 {
		b.WriteString("<div>Passwords must have at least 1 digit(s).</div>")
	}
	if count(func(r rune) bool { return r >= 'a' && r <= 'z' }) < 1 {
		b.WriteString("<div>Passwords must have at least 1 lower case letter(s).</div>")
	}
	if count(func(r rune) bool { return r >= 'A' && r <= 'Z' }) < 1 {
		b.WriteString("<div>Passwords must have at least 1 upper case letter(s).</div>")
	}
	if count(func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 1 {
		b.WriteString("<div>The password must have at least 1 special character(s) such as *, -, or #.</div>")
	}
	return b.String()
}

func createUsers(c *call) *exception {
	if ex := c.require(CapUserCreate, 0); ex != nil {
		return ex
	}
	type created struct {
		id       int64
		username string
	}
	var done []created
	for _, in := range c.a.items("users") {
		auth := in.str("auth")
		if !slices.Contains([]string{"manual", "nologin", "ldap", "saml2", "oauth2", "cas", "shibboleth", "email", "db"}, auth) {
			return invalidParam("Invalid authentication type: " + auth)
		}
		username := in.str("username")
		if username != strings.ToLower(username) || strings.TrimSpace(username) == "" {
			return invalidParam("The username must be in lower case")
		}
		if _, taken := c.s.userByName[username]; taken {
			return invalidParam("Username already exists: " + username)
		}
		if !strings.Contains(in.str("email"), "@") {
			return invalidParam("Email address is invalid: " + in.str("email"))
		}
		if auth == "manual" && !in.boolean("createpassword") {
			if !in.has("password") || in.str("password") == "" {
				return invalidParam("Invalid password: you must provide a password, or set createpassword.")
			}
			if problems := passwordProblems(in.str("password")); problems != "" {
				return moodleException(problems, "error/"+problems)
			}
		}
		u := User{Username: username, FirstName: in.str("firstname"), LastName: in.str("lastname"),
			Email: in.str("email"), IDNumber: in.str("idnumber"), Auth: auth, Department: in.str("department"),
			Institution: in.str("institution"), City: in.str("city"), Country: in.str("country")}
		for _, cf := range in.items("customfields") {
			for _, pf := range c.s.fields {
				// Moodle ignores values for fields that do not exist.
				if pf.ShortName == cf.str("type") {
					if u.CustomFields == nil {
						u.CustomFields = map[string]string{}
					}
					u.CustomFields[pf.ShortName] = cf.str("value")
				}
			}
		}
		c.s.next.user++
		u.ID = c.s.next.user
		c.s.putUser(&u)
		id := u.ID
		c.onUndo(func() { c.s.dropUser(id) })
		done = append(done, created{u.ID, u.Username})
	}
	o := c.o
	o.list()
	for _, d := range done {
		o.obj()
		o.knum("id", d.id)
		o.kstr("username", d.username)
		o.end()
	}
	o.end()
	return nil
}

// dropUser forgets a user created in a call that is being rolled back.
func (s *Site) dropUser(id int64) {
	u := s.users[id]
	if u == nil {
		return
	}
	delete(s.users, id)
	delete(s.userByName, u.Username)
	s.usersByIDNumber[u.IDNumber] = slices.DeleteFunc(s.usersByIDNumber[u.IDNumber], func(x int64) bool { return x == id })
	s.userIDs = slices.DeleteFunc(s.userIDs, func(x int64) bool { return x == id })
	if s.next.user == id {
		s.next.user--
	}
}

func createCourses(c *call) *exception {
	type created struct {
		id        int64
		shortname string
	}
	var done []created
	for _, in := range c.a.items("courses") {
		catID := in.int("categoryid")
		if c.s.cats[catID] == nil {
			return moodleException("errorcatcontextnotvalid", fmt.Sprintf(
				"You cannot execute functions in the category context (category id:%d). The context error message was: Invalid parameter value detected", catID))
		}
		if ex := c.require(CapCourseCreate, 0); ex != nil {
			return ex
		}
		short := in.str("shortname")
		if _, taken := c.s.courseByShort[short]; taken {
			return moodleException("shortnametaken", "Short name is already used for another course ("+short+")")
		}
		idnumber := in.str("idnumber")
		if other, taken := c.s.courseByIDNumber[idnumber]; taken && idnumber != "" {
			return moodleException("courseidnumbertaken", "ID number is already used for another course ("+c.s.courses[other].ShortName+")")
		}
		cr := Course{ShortName: short, FullName: in.str("fullname"), IDNumber: idnumber, Summary: in.str("summary"),
			CategoryID: catID, Format: in.str("format"), Visible: !in.has("visible") || in.int("visible") != 0,
			StartDate: in.int("startdate"), EndDate: in.int("enddate")}
		if !in.has("startdate") {
			cr.StartDate = c.now
		}
		id := c.s.addCourse(cr, c.now)
		c.onUndo(func() { c.s.dropCourse(id) })
		done = append(done, created{id, short})
	}
	o := c.o
	o.list()
	for _, d := range done {
		o.obj()
		o.knum("id", d.id)
		o.kstr("shortname", d.shortname)
		o.end()
	}
	o.end()
	return nil
}

// addCourse stores a new course with a manual enrolment instance,
// allocating its id when cr.ID is 0.
func (s *Site) addCourse(cr Course, now int64) int64 {
	if cr.ID == 0 {
		s.next.course++
		cr.ID = s.next.course
	}
	s.next.course = max(s.next.course, cr.ID)
	if cr.Format == "" {
		cr.Format = "topics"
	}
	s.courses[cr.ID] = &course{Course: cr, timecreated: now, timemodified: now}
	s.courseByShort[cr.ShortName] = cr.ID
	if cr.IDNumber != "" {
		s.courseByIDNumber[cr.IDNumber] = cr.ID
	}
	s.catCourses[cr.CategoryID] = append(s.catCourses[cr.CategoryID], cr.ID)
	s.resortCourses(cr.CategoryID)
	s.ensureInstance(cr.ID, "manual")
	s.next.item++
	s.items[s.next.item] = &GradeItem{ID: s.next.item, CourseID: cr.ID, ItemType: "course"}
	s.autoTotal[s.next.item] = true
	s.courseItems[cr.ID] = []int64{s.next.item}
	s.next.gradeCat++
	s.gradeCats[cr.ID] = s.next.gradeCat
	return cr.ID
}

func (s *Site) dropCourse(id int64) {
	cr := s.courses[id]
	if cr == nil {
		return
	}
	delete(s.courses, id)
	delete(s.courseByShort, cr.ShortName)
	if cr.IDNumber != "" {
		delete(s.courseByIDNumber, cr.IDNumber)
	}
	s.catCourses[cr.CategoryID] = slices.DeleteFunc(s.catCourses[cr.CategoryID], func(x int64) bool { return x == id })
	s.resortCourses(cr.CategoryID)
	delete(s.instances, id)
	for _, item := range s.courseItems[id] {
		delete(s.items, item)
		delete(s.autoTotal, item)
		if s.next.item == item {
			s.next.item--
		}
	}
	delete(s.courseItems, id)
	delete(s.gradeCats, id)
	if s.next.course == id {
		s.next.course--
	}
}
