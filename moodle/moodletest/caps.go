package moodletest

import "slices"

// Capabilities a web-service role may hold, by their Moodle names. The
// simulator checks those below where Moodle 4.5's functions check them.
const (
	CapRestUse              = "webservice/rest:use"
	CapCreateToken          = "moodle/webservice:createtoken"
	CapCourseView           = "moodle/course:view"
	CapViewHiddenCourses    = "moodle/course:viewhiddencourses"
	CapViewParticipants     = "moodle/course:viewparticipants"
	CapEnrolReview          = "moodle/course:enrolreview"
	CapViewDetails          = "moodle/user:viewdetails"
	CapViewAllDetails       = "moodle/user:viewalldetails"
	CapViewHiddenDetails    = "moodle/user:viewhiddendetails"
	CapViewHiddenUserFields = "moodle/course:viewhiddenuserfields"
	CapCourseUserEmail      = "moodle/course:useremail"
	CapViewUserIdentity     = "moodle/site:viewuseridentity"
	CapViewFullNames        = "moodle/site:viewfullnames"
	CapViewSuspendedUsers   = "moodle/course:viewsuspendedusers"
	CapAccessAllGroups      = "moodle/site:accessallgroups"
	CapManageGroups         = "moodle/course:managegroups"
	CapViewHiddenCategories = "moodle/category:viewhiddencategories"
	CapManageCategory       = "moodle/category:manage"
	CapCourseUpdate         = "moodle/course:update"
	CapCourseCreate         = "moodle/course:create"
	CapCourseDelete         = "moodle/course:delete"
	CapUserCreate           = "moodle/user:create"
	CapUserUpdate           = "moodle/user:update"
	CapManualEnrol          = "enrol/manual:enrol"
	CapRoleAssign           = "moodle/role:assign"
	CapGradeViewAll         = "moodle/grade:viewall"
	CapGradeView            = "moodle/grade:view"
	CapGradeReportUserView  = "gradereport/user:view"
	CapCompletionView       = "report/completion:view"
	CapIsInCompletion       = "moodle/course:isincompletionreports"
	CapViewHiddenActivities = "moodle/course:viewhiddenactivities"
)

// capNames are the capabilities' names in Moodle's English strings, as
// required_capability_exception quotes them.
var capNames = map[string]string{
	CapManageGroups:     "Manage groups",
	CapViewParticipants: "View participants",
	CapGradeViewAll:     "View all grades",
	CapManualEnrol:      "Enrol users",
	CapUserCreate:       "Create users",
	CapCourseCreate:     "Create courses",
	CapCourseView:       "View courses without participation",
	CapViewDetails:      "View user profiles",
	CapCompletionView:   "View course completion report",
	CapEnrolReview:      "Review course enrolments",
}

// WebServiceRole returns the capabilities of the role a site gives MIM's
// web-service user at system context: the 31 the recorded second site
// granted (it is what the README's Moodle set-up section asks for). Every
// read MIM makes works with them, and group writes; course visibility and
// forced languages do not (moodle/course:visibility and
// moodle/course:setforcedlanguage are not among them).
func WebServiceRole() []string {
	return []string{
		CapRestUse, CapCreateToken, CapCourseView, CapViewHiddenCourses, CapViewParticipants, CapEnrolReview,
		CapViewDetails, CapViewAllDetails, CapViewHiddenDetails, CapViewHiddenUserFields, CapCourseUserEmail,
		CapViewUserIdentity, CapViewFullNames, CapViewSuspendedUsers, CapAccessAllGroups, CapManageGroups,
		CapViewHiddenCategories, CapManageCategory, CapCourseUpdate, CapCourseCreate, CapCourseDelete,
		CapUserCreate, CapUserUpdate, CapManualEnrol, CapRoleAssign, CapGradeViewAll, CapGradeView,
		CapGradeReportUserView, CapCompletionView, CapIsInCompletion, CapViewHiddenActivities,
	}
}

// Without returns caps less the named capabilities, for a role a site
// set up short.
func Without(caps []string, remove ...string) []string {
	return slices.DeleteFunc(slices.Clone(caps), func(c string) bool { return slices.Contains(remove, c) })
}

// has reports whether the web-service user holds capability at system
// context: the administrator holds every one; a token's role holds its
// Capabilities.
func (c *call) has(capability string) bool {
	return c.admin || c.caps[capability]
}

// roleToken says whether the token belongs to a web-service user with a
// system role (Token.Capabilities) rather than the administrator or a
// user who has only course roles.
func (c *call) roleToken() bool { return !c.admin && c.caps != nil }

// self reports whether u is the web-service user.
func (c *call) self(u *User) bool { return c.user != nil && c.user.ID == u.ID }

// userPerms is what the web-service user may see of one account
// (user_get_user_details): whether it is listed at all, and which groups
// of fields.
type userPerms struct {
	visible  bool // listed at all (moodle/user:viewdetails)
	names    bool // firstname and lastname (moodle/site:viewfullnames)
	details  bool // username, idnumber, institution, department, custom fields (viewalldetails)
	email    bool
	account  bool // auth, confirmed, lang, theme, mailformat, trackforums (system context)
	settings bool // suspended and timezone (system context)
}

// perms decides what the web-service user sees of u, in a course's
// context (get_enrolled_users) or the system's (get_users).
func (c *call) perms(u *User, courseCtx bool) userPerms {
	switch {
	case c.admin:
		return userPerms{visible: true, names: true, details: true, email: true, account: !courseCtx, settings: !courseCtx}
	case c.self(u):
		return userPerms{visible: true, names: true, details: true, email: true, account: !courseCtx && c.roleToken(), settings: !courseCtx && c.roleToken()}
	case !c.roleToken():
		// A user with course roles only sees others in the courses they
		// share, without their e-mail or account settings.
		return userPerms{visible: courseCtx, names: true, details: true}
	}
	p := userPerms{visible: c.has(CapViewDetails), names: c.has(CapViewFullNames), details: c.has(CapViewAllDetails)}
	p.email = u.MailDisplay == 1 || c.has(CapViewUserIdentity) || courseCtx && c.has(CapCourseUserEmail)
	p.account = !courseCtx && p.details
	p.settings = !courseCtx
	return p
}

// phpEmpty is PHP's empty() for a string: "" and "0".
func phpEmpty(s string) bool { return s == "" || s == "0" }
