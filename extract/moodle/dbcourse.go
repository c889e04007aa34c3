package moodle

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"

	"github.com/mimwarehouse/mim/extract"
)

// dbGroup is what an enrolled user's groups list shows of a group.
type dbGroup struct {
	rank  int    // position in the course's groups by name, as Moodle's SQL orders them
	entry []byte // the list entry, built once
}

// perCourse reads the per-course entities of every course but the front
// page: groups and groupings, enrolments with roles and groups, then roles
// and, where enabled, grades and completion. Each course is a scope, as
// over web services; in one snapshot every course is read or none is.
func (r *dbRead) perCourse(ctx context.Context) error {
	x := r.x
	enrolOut, rolesOut := x.open(ctx, entEnrolments), x.open(ctx, entRoles)
	groupsOut, groupingsOut := x.open(ctx, entGroups), x.open(ctx, entGroupings)
	methodsOut := x.open(ctx, entEnrolMethods)
	current := map[string]bool{}
	for _, c := range r.courses {
		if !c.site {
			current[c.scope()] = true
		}
	}
	x.expect(entEnrolments, len(current))
	x.expect(entGroups, len(current))
	x.expect(entGroupings, len(current))
	x.expect(entEnrolMethods, len(current))

	readEnrolments := enrolOut != nil || rolesOut != nil || x.land[entCompletion] || x.land[entGrades] || x.land[entGradeItems]
	var groups map[int64]*dbGroup
	if groupsOut != nil || readEnrolments {
		var err error
		if groups, err = r.groups(ctx, groupsOut, current); err != nil {
			return err
		}
	}
	if groupingsOut != nil {
		if err := r.groupings(ctx, groupingsOut, current); err != nil {
			return err
		}
	}
	if readEnrolments {
		if err := r.enrolments(ctx, enrolOut, rolesOut, groups, current); err != nil {
			return err
		}
	}
	if methodsOut != nil {
		if err := r.enrolMethods(ctx, methodsOut, current); err != nil {
			return err
		}
	}
	for _, o := range []*entityOut{enrolOut, groupsOut, groupingsOut, methodsOut} {
		if o == nil {
			continue
		}
		for scope := range current {
			o.complete(scope)
		}
		if err := r.closeGone(ctx, o, current); err != nil {
			return err
		}
		o.commit(ctx)
		x.done(o.name, len(current))
	}
	return r.gradesAndCompletion(ctx, current)
}

// closeGone declares complete the scopes o holds live rows in that are not
// current: their course is gone from the site, and its rows must not stay
// current for ever. Like the web-service read, it leaves them when the
// course list is empty (more likely a wrong prefix or grant than an empty
// site), and without a loader that can list scopes.
func (r *dbRead) closeGone(ctx context.Context, o *entityOut, current map[string]bool) error {
	lister, ok := o.w.(extract.ScopeLister)
	if !ok || len(current) == 0 {
		return nil
	}
	scopes, err := lister.LiveScopes(ctx)
	if err != nil {
		return err
	}
	for _, s := range scopes {
		if !current[s] {
			o.complete(s)
		}
	}
	return nil
}

// groups reads core_group_get_course_groups for every course and keeps
// what enrolled users' groups lists show.
func (r *dbRead) groups(ctx context.Context, o *entityOut, current map[string]bool) (map[int64]*dbGroup, error) {
	out := map[int64]*dbGroup{}
	var (
		id, courseID, descFormat, visibility, participation int64
		name, idnumber                                      string
		desc, key                                           sql.NullString
		j                                                   jsonObj
		lastCourse                                          int64
		rank                                                int
	)
	err := r.q.each(ctx, "groups", `SELECT id, courseid, name, description, descriptionformat, enrolmentkey, idnumber,
			visibility, participation
		FROM {groups} ORDER BY courseid, name, id`, nil,
		[]any{&id, &courseID, &name, &desc, &descFormat, &key, &idnumber, &visibility, &participation}, func() error {
			scope := strconv.FormatInt(courseID, 10)
			if !current[scope] {
				return nil
			}
			if courseID != lastCourse {
				lastCourse, rank = courseID, 0
			}
			rank++
			j.reset()
			j.num("id", id)
			j.str("name", name)
			j.str("description", desc.String)
			j.num("descriptionformat", descFormat)
			out[id] = &dbGroup{rank: rank, entry: slices.Clone(j.close())}
			if o == nil {
				return nil
			}
			j.reset()
			j.num("id", id)
			j.num("courseid", courseID)
			j.str("name", name)
			j.str("description", desc.String)
			j.num("descriptionformat", descFormat)
			if key.Valid {
				j.str("enrolmentkey", key.String)
			} else {
				j.null("enrolmentkey")
			}
			j.str("idnumber", idnumber)
			j.num("visibility", visibility)
			j.boolean("participation", participation != 0)
			return o.write(ctx, strconv.FormatInt(id, 10), scope, j.close())
		})
	return out, err
}

// groupings reads core_group_get_course_groupings for every course, each
// with mim_groupids (core_group_get_groupings' groups), ascending.
func (r *dbRead) groupings(ctx context.Context, o *entityOut, current map[string]bool) error {
	members := map[int64][]int64{}
	var groupingID, groupID int64
	err := r.q.each(ctx, "the groups of groupings", "SELECT groupingid, groupid FROM {groupings_groups} ORDER BY groupingid, groupid", nil,
		[]any{&groupingID, &groupID}, func() error {
			members[groupingID] = append(members[groupingID], groupID)
			return nil
		})
	if err != nil {
		return err
	}
	var (
		id, courseID, descFormat int64
		name, idnumber           string
		desc                     sql.NullString
		j                        jsonObj
	)
	return r.q.each(ctx, "groupings", `SELECT id, courseid, name, description, descriptionformat, idnumber
		FROM {groupings} ORDER BY courseid, name, id`, nil,
		[]any{&id, &courseID, &name, &desc, &descFormat, &idnumber}, func() error {
			scope := strconv.FormatInt(courseID, 10)
			if !current[scope] {
				return nil
			}
			j.reset()
			j.num("id", id)
			j.num("courseid", courseID)
			j.str("name", name)
			j.str("description", desc.String)
			j.num("descriptionformat", descFormat)
			j.str("idnumber", idnumber)
			ids, err := marshal(nonNil(members[id]))
			if err != nil {
				return err
			}
			j.raw("mim_groupids", ids)
			return o.write(ctx, strconv.FormatInt(id, 10), scope, j.close())
		})
}

// enrolMethods lands every enrolment instance of the courses, disabled
// ones included, with the payload docs/contracts.md gives: status true when
// mdl_enrol.status is 0 (enabled), name as stored ("" when unset),
// mim_source "database".
func (r *dbRead) enrolMethods(ctx context.Context, o *entityOut, current map[string]bool) error {
	var (
		id, courseID, status int64
		typ                  string
		name                 sql.NullString
		j                    jsonObj
	)
	return r.q.each(ctx, "enrolment instances", `SELECT id, courseid, enrol, name, status FROM {enrol} ORDER BY courseid, sortorder, id`, nil,
		[]any{&id, &courseID, &typ, &name, &status}, func() error {
			scope := strconv.FormatInt(courseID, 10)
			if !current[scope] {
				return nil
			}
			j.reset()
			j.num("id", id)
			j.num("courseid", courseID)
			j.str("type", typ)
			j.str("name", name.String)
			j.boolean("status", status == 0)
			j.num("mim_courseid", courseID)
			j.str("mim_source", "database")
			return o.write(ctx, scope+":"+strconv.FormatInt(id, 10), scope, j.close())
		})
}

func nonNil(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}

// courseUser orders rows by course, then user.
type courseUser struct{ course, user int64 }

func (a courseUser) cmp(b courseUser) int {
	if c := cmp.Compare(a.course, b.course); c != 0 {
		return c
	}
	return cmp.Compare(a.user, b.user)
}

// roleRef is one role assignment of a user in a course context.
type roleRef struct {
	courseUser
	roleID, sortorder int64
}

// membership is one user's membership of a group of a course.
type membership struct {
	courseUser
	groupID int64
}

// dbRole is a role as enrolled users' roles lists show it.
type dbRole struct {
	shortname, name string
}

// enrolments reads core_enrol_get_enrolled_users for every course: each
// user enrolled by any method, whatever the state (a deleted user is not
// enrolled anywhere, the guest account never), with their roles in the
// course context and their groups there; mim_suspended is true when none
// of their enrolments is active now (the onlysuspended=1 read). Role
// assignments and group memberships are read first, in course and user
// order, and merged with the enrolments as they stream in.
func (r *dbRead) enrolments(ctx context.Context, enrolOut, rolesOut *entityOut, groups map[int64]*dbGroup,
	current map[string]bool) error {
	roles := map[int64]dbRole{}
	var (
		id, sortorder   int64
		shortname, name string
	)
	err := r.q.each(ctx, "roles", "SELECT id, shortname, name, sortorder FROM {role}", nil,
		[]any{&id, &shortname, &name, &sortorder}, func() error {
			roles[id] = dbRole{shortname: shortname, name: name}
			return nil
		})
	if err != nil {
		return err
	}
	// get_user_roles(context, userid, false): assignments in the course
	// context only, one per assignment, by the role's sort order.
	var refs []roleRef
	var ref roleRef
	err = r.q.each(ctx, "role assignments", `SELECT ctx.instanceid, ra.userid, ra.roleid, ra.sortorder
		FROM {role_assignments} ra
		JOIN {context} ctx ON ctx.id = ra.contextid AND ctx.contextlevel = 50
		JOIN {role} r ON r.id = ra.roleid
		ORDER BY ctx.instanceid, ra.userid, r.sortorder, ra.id`, nil,
		[]any{&ref.course, &ref.user, &ref.roleID, &ref.sortorder}, func() error { refs = append(refs, ref); return nil })
	if err != nil {
		return err
	}
	var mems []membership
	var m membership
	err = r.q.each(ctx, "group members", `SELECT g.courseid, gm.userid, gm.groupid
		FROM {groups_members} gm JOIN {groups} g ON g.id = gm.groupid
		ORDER BY g.courseid, gm.userid, gm.groupid`, nil,
		[]any{&m.course, &m.user, &m.groupID}, func() error {
			if groups[m.groupID] != nil {
				mems = append(mems, m)
			}
			return nil
		})
	if err != nil {
		return err
	}
	guest, _ := strconv.ParseInt(r.cfg["siteguest"], 10, 64)
	var (
		cu                courseUser
		username          string
		idnumber          sql.NullString
		first, last       string
		active            int64
		ri, mi            int
		j, item           jsonObj
		roleList, grpList jsonList
		mine              []*dbGroup
		harvested         = map[int64][]byte{}
	)
	graders := map[int64]bool{}
	for _, id := range strings.Split(r.cfg["gradebookroles"], ",") {
		if n, err := strconv.ParseInt(strings.TrimSpace(id), 10, 64); err == nil {
			graders[n] = true
		}
	}
	r.enrolled = map[int64]int64{}
	r.activeIn = map[int64][]int64{}
	r.graded = map[int64][]int64{}
	r.seesHidden = map[courseUser]bool{}
	err = r.q.each(ctx, "enrolments", `SELECT x.courseid, u.id, u.username, u.idnumber, u.firstname, u.lastname, x.active
		FROM (SELECT e.courseid, ue.userid,
		             MAX(CASE WHEN ue.status = 0 AND e.status = 0 AND ue.timestart < ?
		                       AND (ue.timeend = 0 OR ue.timeend > ?) THEN 1 ELSE 0 END) AS active
		        FROM {user_enrolments} ue JOIN {enrol} e ON e.id = ue.enrolid
		       GROUP BY e.courseid, ue.userid) x
		JOIN {user} u ON u.id = x.userid
		WHERE u.deleted = 0 AND u.id <> ?
		ORDER BY x.courseid, u.id`, []any{r.now, r.now, guest},
		[]any{&cu.course, &cu.user, &username, &idnumber, &first, &last, &active}, func() error {
			for ri < len(refs) && refs[ri].courseUser.cmp(cu) < 0 {
				ri++
			}
			for mi < len(mems) && mems[mi].courseUser.cmp(cu) < 0 {
				mi++
			}
			scope := strconv.FormatInt(cu.course, 10)
			if !current[scope] {
				return nil
			}
			r.enrolled[cu.course]++
			j.reset()
			j.num("id", cu.user)
			j.str("username", username)
			// Moodle adds fullname to whatever userfields asked for.
			j.str("fullname", first+" "+last)
			if idnumber.String != "" {
				j.str("idnumber", idnumber.String)
			}
			mine = mine[:0]
			for ; mi < len(mems) && mems[mi].courseUser == cu; mi++ {
				mine = append(mine, groups[mems[mi].groupID])
			}
			if len(mine) > 0 {
				slices.SortFunc(mine, func(a, b *dbGroup) int { return cmp.Compare(a.rank, b.rank) })
				grpList.reset()
				for _, g := range mine {
					grpList.add(g.entry)
				}
				j.raw("groups", grpList.close())
			}
			roleList.reset()
			graded := false
			for ; ri < len(refs) && refs[ri].courseUser == cu; ri++ {
				ro := roles[refs[ri].roleID]
				item.reset()
				item.num("roleid", refs[ri].roleID)
				item.str("name", ro.name)
				item.str("shortname", ro.shortname)
				item.num("sortorder", refs[ri].sortorder)
				roleList.add(item.close())
				if _, seen := harvested[refs[ri].roleID]; !seen {
					// Rows come in course order: the lowest course decides,
					// as over web services.
					p, err := marshal(rolePayload{RoleID: refs[ri].roleID, ShortName: ro.shortname, Name: ro.name})
					if err != nil {
						return err
					}
					harvested[refs[ri].roleID] = p
				}
				switch ro.shortname {
				case "manager", "coursecreator", "editingteacher", "teacher":
					r.seesHidden[cu] = true
				}
				if graders[refs[ri].roleID] && active == 1 && !graded {
					graded = true
					r.graded[cu.course] = append(r.graded[cu.course], cu.user)
				}
			}
			j.raw("roles", roleList.close())
			j.num("mim_courseid", cu.course)
			j.boolean("mim_suspended", active == 0)
			if active == 1 {
				r.activeIn[cu.user] = append(r.activeIn[cu.user], cu.course)
			}
			return enrolOut.write(ctx, scope+":"+strconv.FormatInt(cu.user, 10), scope, j.close())
		})
	if err != nil {
		return err
	}
	if rolesOut != nil {
		ids := make([]int64, 0, len(harvested))
		for id := range harvested {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		r.x.expect(entRoles, len(ids))
		for _, id := range ids {
			if err := rolesOut.write(ctx, strconv.FormatInt(id, 10), "", harvested[id]); err != nil {
				return err
			}
		}
		rolesOut.complete("")
		rolesOut.commit(ctx)
		r.x.done(entRoles, len(ids))
	}
	return nil
}
