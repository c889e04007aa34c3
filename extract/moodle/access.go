package moodle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mimwarehouse/mim/moodle"
)

// Moodle answers a web-service user without a capability silently: users
// without usernames or e-mail addresses, enrolled users without groups, no
// users at all. A site whose role lacks a capability then looks like a site
// with no students (a real Moodle 4.5 showed it), so CheckAccess proves,
// before a night relies on it, that the token sees what extraction reads.

// AccessHint is what the warehouse knows of a site (load.MoodleSample, which
// converts to it), to aim CheckAccess at accounts and a course that exist:
// without it, CheckAccess looks at the lowest ids and can only say what it
// found there.
type AccessHint struct {
	// UserIDs are users the last extraction landed.
	UserIDs []int64
	// CourseID is a course with enrolments; Enrolled how many the last
	// extraction landed, GroupMembers how many of them are in a group.
	CourseID     int64
	Enrolled     int
	GroupMembers int
}

// Access is one finding of CheckAccess: what was looked at, whether the
// token sees it as extraction needs, and the capabilities its role lacks.
type Access struct {
	What    string
	OK      bool
	Detail  string
	Missing []string
}

// The capabilities CheckAccess names.
const (
	capViewDetails      = "moodle/user:viewdetails"
	capViewAllDetails   = "moodle/user:viewalldetails"
	capViewFullNames    = "moodle/site:viewfullnames"
	capViewUserIdentity = "moodle/site:viewuseridentity"
	capCourseView       = "moodle/course:view"
	capViewHidden       = "moodle/course:viewhiddencourses"
	capViewParticipants = "moodle/course:viewparticipants"
	capEnrolReview      = "moodle/course:enrolreview"
	capAccessAllGroups  = "moodle/site:accessallgroups"
	capManageGroups     = "moodle/course:managegroups"
	capManageCategory   = "moodle/category:manage"
	capGradeViewAll     = "moodle/grade:viewall"
	capGradeReport      = "gradereport/user:view"
)

// CheckAccess proves with a few reads that the web-service user of c sees
// what extracting site reads: other users' identity fields (username,
// names, e-mail), a course's enrolments with their roles and groups and its
// suspended ones, its groups, categories' idnumbers, and grades where
// enabled. Each finding that fails names the capability the site's role
// for MIM lacks. c must have asked the site who it is (SiteInfo).
func CheckAccess(ctx context.Context, c *moodle.Client, site *Site, hint AccessHint) []Access {
	info := c.Site()
	if info == nil {
		return []Access{{What: "access", Detail: "the site was not asked who it is"}}
	}
	fns := Functions(site)
	needs := func(fn string) bool { return slices.Contains(fns, fn) }
	var out []Access
	if needs(fnUsers) {
		out = append(out, checkUsers(ctx, c, info, hint))
	}
	course := hint.CourseID
	if needs(fnEnrolled) || needs(fnGroups) {
		if course == 0 {
			var a Access
			course, a = findCourse(ctx, c)
			if course == 0 {
				return append(out, a)
			}
		}
	}
	if needs(fnEnrolled) {
		out = append(out, checkEnrolments(ctx, c, course, hint))
	}
	if needs(fnGroups) {
		out = append(out, checkGroups(ctx, c, course))
	}
	if needs(fnCategories) {
		out = append(out, checkCategories(ctx, c))
	}
	if needs(fnGradeItems) {
		out = append(out, checkGrades(ctx, c, course))
	}
	return out
}

// keys reads the top-level keys of a raw object.
func keys(raw json.RawMessage) map[string]bool {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

// missing builds a failed finding.
func missing(what, detail string, caps ...string) Access {
	return Access{What: what, Detail: fmt.Sprintf("missing capability %s: %s", strings.Join(caps, " and "), detail), Missing: caps}
}

// failed is a finding whose read failed; a capability Moodle's error names
// is reported as missing.
func failed(what, doing string, err error, caps ...string) Access {
	if len(caps) > 0 {
		return missing(what, fmt.Sprintf("%s: %v", doing, err), caps...)
	}
	return Access{What: what, Detail: fmt.Sprintf("%s: %v", doing, err)}
}

func checkUsers(ctx context.Context, c *moodle.Client, info *moodle.SiteInfo, hint AccessHint) Access {
	const what = "users"
	ids := hint.UserIDs
	from := "users the last extraction read"
	if len(ids) == 0 {
		from = "ids 1 to 40"
		for id := int64(1); id <= 40; id++ {
			ids = append(ids, id)
		}
	}
	values := make([]string, 0, len(ids))
	for _, id := range ids[:min(len(ids), 40)] {
		values = append(values, strconv.FormatInt(id, 10))
	}
	us, err := c.GetUsersByField(ctx, "id", values)
	if err != nil {
		return failed(what, "reading users by id", err)
	}
	var others []moodle.User
	for _, u := range us {
		// Not the web-service user, who sees itself whole, nor the guest
		// and the administrator, whose e-mail everyone sees.
		if u.ID != info.UserID && u.ID > 2 {
			others = append(others, u)
		}
	}
	if len(others) == 0 {
		if len(hint.UserIDs) > 0 {
			return missing(what, fmt.Sprintf("none of %d %s comes back: the site would look as if it had no users", len(values), from),
				capViewDetails)
		}
		return Access{What: what, OK: true, Detail: "no other user among " + from + " to look at (not checked)"}
	}
	seen := map[string]int{}
	for _, u := range others {
		for k := range keys(u.Raw) {
			seen[k]++
		}
	}
	var caps, lost []string
	for _, c := range []struct{ key, cap, what string }{
		{"username", capViewAllDetails, "usernames, idnumbers and custom profile fields"},
		{"lastname", capViewFullNames, "first and last names"},
		{"email", capViewUserIdentity, "e-mail addresses (and moodle/site:showuseridentity must list email)"},
	} {
		if seen[c.key] == 0 {
			caps, lost = append(caps, c.cap), append(lost, c.what)
		}
	}
	if len(caps) > 0 {
		return missing(what, fmt.Sprintf("%d users come back without %s", len(others), strings.Join(lost, ", ")), caps...)
	}
	return Access{What: what, OK: true, Detail: fmt.Sprintf("%d users of %s come back with usernames, names and e-mail addresses", len(others), from)}
}

// findCourse looks for a course to check among the lowest ids.
func findCourse(ctx context.Context, c *moodle.Client) (int64, Access) {
	var ids []int64
	for id := int64(2); id <= 30; id++ {
		ids = append(ids, id)
	}
	courses, err := c.GetCourses(ctx, ids...)
	if err != nil {
		var caps []string
		if k, _ := moodle.KindOf(err); k == moodle.ContextNotValid || k == moodle.NoPermissions {
			caps = []string{capCourseView, capViewHidden}
		}
		return 0, failed("courses", "reading courses 2 to 30", err, caps...)
	}
	for _, cr := range courses {
		if cr.ID > 1 {
			return int64(cr.ID), Access{}
		}
	}
	return 0, Access{What: "courses", OK: true, Detail: "no course among ids 2 to 30 to look at (enrolments and groups not checked)"}
}

func checkEnrolments(ctx context.Context, c *moodle.Client, course int64, hint AccessHint) Access {
	const what = "enrolments"
	us, err := c.GetEnrolledUsers(ctx, course, moodle.EnrolledUsersOptions{UserFields: enrolFields, LimitNumber: 50})
	if err != nil {
		var caps []string
		switch k, _ := moodle.KindOf(err); k {
		case moodle.ContextNotValid:
			caps = []string{capCourseView, capViewHidden}
		case moodle.NoPermissions:
			caps = []string{capViewParticipants}
		}
		return failed(what, fmt.Sprintf("reading the enrolments of course %d", course), err, caps...)
	}
	if _, err := c.GetEnrolledUsers(ctx, course, moodle.EnrolledUsersOptions{OnlySuspended: true, UserFields: []string{"id"}, LimitNumber: 1}); err != nil {
		var caps []string
		if k, _ := moodle.KindOf(err); k == moodle.NoPermissions {
			caps = []string{capEnrolReview}
		}
		return failed(what, fmt.Sprintf("reading the suspended enrolments of course %d", course), err, caps...)
	}
	if len(us) == 0 {
		if hint.CourseID == course && hint.Enrolled > 0 {
			return missing(what, fmt.Sprintf("course %d comes back with no enrolled user; the last extraction read %d", course, hint.Enrolled),
				capViewDetails)
		}
		return Access{What: what, OK: true, Detail: fmt.Sprintf("course %d has no enrolled user to look at (not checked)", course)}
	}
	seen := map[string]int{}
	for _, u := range us {
		for k := range keys(u.Raw) {
			seen[k]++
		}
	}
	switch {
	case seen["username"] == 0:
		return missing(what, fmt.Sprintf("course %d's enrolled users come back without usernames and idnumbers", course), capViewAllDetails)
	case seen["roles"] == 0:
		return Access{What: what, Detail: fmt.Sprintf("course %d's enrolled users come back without roles", course)}
	case seen["groups"] == 0 && hint.CourseID == course && hint.GroupMembers > 0:
		return missing(what, fmt.Sprintf("course %d's enrolled users come back without their groups; the last extraction read %d group members",
			course, hint.GroupMembers), capAccessAllGroups)
	}
	return Access{What: what, OK: true, Detail: fmt.Sprintf("course %d: %d enrolled users with usernames and roles, and its suspended ones", course, len(us))}
}

func checkGroups(ctx context.Context, c *moodle.Client, course int64) Access {
	if _, err := c.GetCourseGroups(ctx, course); err != nil {
		var caps []string
		switch k, _ := moodle.KindOf(err); k {
		case moodle.NoPermissions:
			caps = []string{capManageGroups}
		case moodle.ContextNotValid:
			caps = []string{capCourseView}
		}
		return failed("groups", fmt.Sprintf("reading the groups of course %d", course), err, caps...)
	}
	return Access{What: "groups", OK: true, Detail: fmt.Sprintf("course %d's groups", course)}
}

func checkCategories(ctx context.Context, c *moodle.Client) Access {
	cats, err := c.GetCategories(ctx)
	if err != nil {
		return failed("categories", "reading the categories", err)
	}
	for _, cat := range cats {
		if keys(cat.Raw)["idnumber"] {
			return Access{What: "categories", OK: true, Detail: fmt.Sprintf("%d categories with their idnumbers", len(cats))}
		}
	}
	if len(cats) == 0 {
		return Access{What: "categories", OK: true, Detail: "no category to look at (not checked)"}
	}
	return missing("categories", fmt.Sprintf("%d categories come back without idnumbers", len(cats)), capManageCategory)
}

func checkGrades(ctx context.Context, c *moodle.Client, course int64) Access {
	if _, _, err := c.GetGradeItems(ctx, course, 0); err != nil {
		var me *moodle.Error
		var caps []string
		switch {
		case errors.As(err, &me) && me.ErrorCode == "nopermissiontoviewgrades":
			caps = []string{capGradeViewAll}
		case errors.As(err, &me) && me.Kind == moodle.NoPermissions:
			caps = []string{capGradeReport}
		}
		return failed("grades", fmt.Sprintf("reading the grade report of course %d", course), err, caps...)
	}
	return Access{What: "grades", OK: true, Detail: fmt.Sprintf("course %d's grade report", course)}
}
