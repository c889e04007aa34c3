package moodletest

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

func (c *call) writeGroup(g *group, full bool) {
	o := c.o
	o.obj()
	o.knum("id", g.ID)
	o.knum("courseid", g.CourseID)
	o.kstr("name", g.Name)
	o.kstr("description", g.Description)
	o.knum("descriptionformat", g.descFormat)
	if g.enrolmentKey == "" {
		o.knull("enrolmentkey")
	} else {
		o.kstr("enrolmentkey", g.enrolmentKey)
	}
	o.kstr("idnumber", g.IDNumber)
	if full {
		o.knum("visibility", g.visibility)
		o.kbool("participation", g.participation)
	} else {
		o.klist("customfields")
		o.end()
	}
	o.end()
}

func getCourseGroups(c *call) *exception {
	courseID := c.a.int("courseid")
	if ex := c.manageGroups(courseID); ex != nil {
		return ex
	}
	c.o.list()
	for _, id := range c.s.groupsByName(courseID) {
		c.writeGroup(c.s.groups[id], true)
	}
	c.o.end()
	return nil
}

func (c *call) writeGrouping(g *grouping, withExtras bool) {
	o := c.o
	o.obj()
	o.knum("id", g.ID)
	o.knum("courseid", g.CourseID)
	o.kstr("name", g.Name)
	o.kstr("description", g.Description)
	o.knum("descriptionformat", g.descFormat)
	o.kstr("idnumber", g.IDNumber)
	if withExtras {
		o.klist("customfields")
		o.end()
	}
}

func getCourseGroupings(c *call) *exception {
	courseID := c.a.int("courseid")
	if ex := c.manageGroups(courseID); ex != nil {
		return ex
	}
	c.o.list()
	for _, id := range c.s.groupingsByName(courseID) {
		c.writeGrouping(c.s.groupings[id], false)
		c.o.end()
	}
	c.o.end()
	return nil
}

func getGroupings(c *call) *exception {
	ids := c.a.ints("groupingids")
	for _, id := range ids {
		g := c.s.groupings[id]
		if g == nil {
			return missingRecord("groupings", "SELECT * FROM {groupings} WHERE id = ?", id)
		}
		if ex := c.manageGroups(g.CourseID); ex != nil {
			return ex
		}
	}
	o := c.o
	o.list()
	for _, id := range ids {
		g := c.s.groupings[id]
		c.writeGrouping(g, true)
		if c.a.boolean("returngroups") {
			o.klist("groups")
			members := slices.Clone(g.Groups)
			sort.Slice(members, func(i, j int) bool {
				a, b := c.s.groups[members[i]], c.s.groups[members[j]]
				if a.Name != b.Name {
					return a.Name < b.Name
				}
				return a.ID < b.ID
			})
			for _, gid := range members {
				c.writeGroup(c.s.groups[gid], false)
			}
			o.end()
		}
		o.end()
	}
	o.end()
	return nil
}

func getGroupMembers(c *call) *exception {
	ids := c.a.ints("groupids")
	for _, id := range ids {
		g := c.s.groups[id]
		if g == nil {
			return missingRecord("groups", "SELECT id, courseid, name, enrolmentkey FROM {groups} WHERE id = ?", id)
		}
		if ex := c.manageGroups(g.CourseID); ex != nil {
			return ex
		}
	}
	o := c.o
	o.list()
	for _, id := range ids {
		g := c.s.groups[id]
		users := make([]int64, 0, len(g.members))
		for uid := range g.members {
			users = append(users, uid)
		}
		sort.Slice(users, func(i, j int) bool {
			a, b := c.s.users[users[i]], c.s.users[users[j]]
			if a.LastName != b.LastName {
				return a.LastName < b.LastName
			}
			if a.FirstName != b.FirstName {
				return a.FirstName < b.FirstName
			}
			return a.ID < b.ID
		})
		o.obj()
		o.knum("groupid", id)
		o.klist("userids")
		for _, uid := range users {
			o.num(uid)
		}
		o.end()
		o.end()
	}
	o.end()
	return nil
}

var idNumberTaken = func() *exception { return moodleException("idnumbertaken", "This ID number is already in use") }

func createGroups(c *call) *exception {
	var made []*group
	for _, in := range c.a.items("groups") {
		courseID, name := in.int("courseid"), in.str("name")
		if strings.TrimSpace(name) == "" {
			return invalidParam("Invalid group name")
		}
		if c.s.groupByName(courseID, name) != 0 {
			return invalidParam("Group with the same name already exists in the course")
		}
		if ex := c.manageGroups(courseID); ex != nil {
			return ex
		}
		idnumber := in.str("idnumber")
		if c.s.groupByIDNumber(courseID, idnumber) != 0 {
			return idNumberTaken()
		}
		visibility := in.int("visibility")
		if visibility < 0 || visibility > 3 {
			return invalidParam("Invalid group visibility")
		}
		participation := !in.has("participation") || in.boolean("participation")
		if visibility > 1 {
			participation = false
		}
		c.s.next.group++
		g := &group{Group: Group{ID: c.s.next.group, CourseID: courseID, Name: name, IDNumber: idnumber,
			Description: in.str("description")}, members: map[int64]struct{}{}, descFormat: in.int("descriptionformat"),
			enrolmentKey: in.str("enrolmentkey"), visibility: visibility, participation: participation}
		c.s.groups[g.ID] = g
		c.s.courseGroups[courseID] = append(c.s.courseGroups[courseID], g.ID)
		c.onUndo(func() {
			delete(c.s.groups, g.ID)
			c.s.courseGroups[courseID] = slices.DeleteFunc(c.s.courseGroups[courseID], func(x int64) bool { return x == g.ID })
			if c.s.next.group == g.ID {
				c.s.next.group--
			}
		})
		made = append(made, g)
	}
	o := c.o
	o.list()
	for _, g := range made {
		o.obj()
		o.knum("id", g.ID)
		o.knum("courseid", g.CourseID)
		o.kstr("name", g.Name)
		o.kstr("description", g.Description)
		o.knum("descriptionformat", g.descFormat)
		o.kstr("enrolmentkey", g.enrolmentKey)
		o.kstr("idnumber", g.IDNumber)
		o.knum("visibility", g.visibility)
		o.kbool("participation", g.participation)
		o.end()
	}
	o.end()
	return nil
}

func createGroupings(c *call) *exception {
	var made []*grouping
	for _, in := range c.a.items("groupings") {
		courseID, name := in.int("courseid"), in.str("name")
		if strings.TrimSpace(name) == "" {
			return invalidParam("Invalid grouping name")
		}
		if c.s.groupingByName(courseID, name) != 0 {
			return invalidParam("Grouping with the same name already exists in the course")
		}
		if ex := c.manageGroups(courseID); ex != nil {
			return ex
		}
		idnumber := in.str("idnumber")
		if c.s.groupingByIDNumber(courseID, idnumber) != 0 {
			return idNumberTaken()
		}
		c.s.next.grouping++
		g := &grouping{Grouping: Grouping{ID: c.s.next.grouping, CourseID: courseID, Name: name, IDNumber: idnumber,
			Description: in.str("description")}, descFormat: in.int("descriptionformat")}
		c.s.groupings[g.ID] = g
		c.s.courseGroupings[courseID] = append(c.s.courseGroupings[courseID], g.ID)
		c.onUndo(func() {
			delete(c.s.groupings, g.ID)
			c.s.courseGroupings[courseID] = slices.DeleteFunc(c.s.courseGroupings[courseID], func(x int64) bool { return x == g.ID })
			if c.s.next.grouping == g.ID {
				c.s.next.grouping--
			}
		})
		made = append(made, g)
	}
	o := c.o
	o.list()
	for _, g := range made {
		c.writeGrouping(g, false)
		o.end()
	}
	o.end()
	return nil
}

func groupingAssignments(c *call, assign bool) *exception {
	key := "assignments"
	if !assign {
		key = "unassignments"
	}
	for _, in := range c.a.items(key) {
		gg := c.s.groupings[in.int("groupingid")]
		if gg == nil {
			return missingRecord("groupings", "SELECT * FROM {groupings} WHERE id = ?", in.int("groupingid"))
		}
		g := c.s.groups[in.int("groupid")]
		if g == nil {
			return missingRecord("groups", "SELECT * FROM {groups} WHERE id = ?", in.int("groupid"))
		}
		if ex := c.manageGroups(gg.CourseID); ex != nil {
			return ex
		}
		idx := slices.Index(gg.Groups, g.ID)
		switch {
		case assign && idx < 0:
			gg.Groups = append(gg.Groups, g.ID)
			c.onUndo(func() { gg.Groups = slices.DeleteFunc(gg.Groups, func(x int64) bool { return x == g.ID }) })
		case !assign && idx >= 0:
			gg.Groups = slices.Delete(slices.Clone(gg.Groups), idx, idx+1)
			c.onUndo(func() { gg.Groups = slices.Insert(gg.Groups, min(idx, len(gg.Groups)), g.ID) })
		}
	}
	return nil
}

func groupMembers(c *call, add bool) *exception {
	for _, in := range c.a.items("members") {
		g := c.s.groups[in.int("groupid")]
		if g == nil {
			return missingRecord("groups", "SELECT * FROM {groups} WHERE id = ?", in.int("groupid"))
		}
		uid := in.int("userid")
		if c.s.users[uid] == nil {
			return missingRecord("user", "SELECT * FROM {user} WHERE id = ? AND deleted = ? AND mnethostid = ?", uid, 0, "1")
		}
		if ex := c.manageGroups(g.CourseID); ex != nil {
			return ex
		}
		_, in := g.members[uid]
		if add {
			if c.s.member(g.CourseID, uid) == nil {
				return invalidParam("Only enrolled users may be members of groups")
			}
			if !in {
				g.members[uid] = struct{}{}
				c.onUndo(func() { delete(g.members, uid) })
			}
		} else if in {
			delete(g.members, uid)
			c.onUndo(func() { g.members[uid] = struct{}{} })
		}
	}
	return nil
}

func deleteGroups(c *call) *exception {
	for _, id := range c.a.ints("groupids") {
		g := c.s.groups[id]
		if g == nil {
			continue // Moodle silently ignores groups that do not exist.
		}
		if ex := c.manageGroups(g.CourseID); ex != nil {
			return ex
		}
		c.onUndo(c.s.deleteGroup(g))
	}
	return nil
}

// deleteGroup removes a group from its course and groupings.
func (s *Site) deleteGroup(g *group) (undo func()) {
	courseGroups := slices.Clone(s.courseGroups[g.CourseID])
	type pos struct {
		gg  *grouping
		idx int
	}
	var in []pos
	for _, ggid := range s.courseGroupings[g.CourseID] {
		gg := s.groupings[ggid]
		if idx := slices.Index(gg.Groups, g.ID); idx >= 0 {
			in = append(in, pos{gg, idx})
			gg.Groups = slices.Delete(slices.Clone(gg.Groups), idx, idx+1)
		}
	}
	delete(s.groups, g.ID)
	s.courseGroups[g.CourseID] = slices.DeleteFunc(slices.Clone(courseGroups), func(x int64) bool { return x == g.ID })
	return func() {
		s.groups[g.ID] = g
		s.courseGroups[g.CourseID] = courseGroups
		for _, p := range in {
			p.gg.Groups = slices.Insert(p.gg.Groups, min(p.idx, len(p.gg.Groups)), g.ID)
		}
	}
}

func deleteGroupings(c *call) *exception {
	for _, id := range c.a.ints("groupingids") {
		gg := c.s.groupings[id]
		if gg == nil {
			continue
		}
		if ex := c.manageGroups(gg.CourseID); ex != nil {
			return ex
		}
		list := slices.Clone(c.s.courseGroupings[gg.CourseID])
		delete(c.s.groupings, id)
		c.s.courseGroupings[gg.CourseID] = slices.DeleteFunc(slices.Clone(list), func(x int64) bool { return x == id })
		c.onUndo(func() {
			c.s.groupings[id] = gg
			c.s.courseGroupings[gg.CourseID] = list
		})
	}
	return nil
}

// updateGroups is core_group_update_groups: each group's name (required)
// and, when given, description, enrolment key and idnumber are rewritten;
// a name or idnumber another group of the course has is refused. The
// answer is null.
func updateGroups(c *call) *exception {
	for _, in := range c.a.items("groups") {
		id, name := in.int("id"), in.str("name")
		if strings.TrimSpace(name) == "" {
			return invalidParam("Invalid group name")
		}
		g := c.s.groups[id]
		if g == nil {
			return invalidParam(fmt.Sprintf("Group %d does not exist", id))
		}
		if other := c.s.groupByName(g.CourseID, name); name != g.Name && other != 0 && other != id {
			return invalidParam("A different group with the same name already exists in the course")
		}
		if ex := c.manageGroups(g.CourseID); ex != nil {
			return ex
		}
		before := *g
		if in.has("idnumber") {
			idn := in.str("idnumber")
			if other := c.s.groupByIDNumber(g.CourseID, idn); idn != "" && other != 0 && other != id {
				return idNumberTaken()
			}
			g.IDNumber = idn
		}
		g.Name = name
		if in.has("description") {
			g.Description = in.str("description")
		}
		if in.has("enrolmentkey") {
			g.enrolmentKey = in.str("enrolmentkey")
		}
		c.onUndo(func() { *g = before })
	}
	return nil
}

// updateGroupings is core_group_update_groupings, as updateGroups.
func updateGroupings(c *call) *exception {
	for _, in := range c.a.items("groupings") {
		id, name := in.int("id"), in.str("name")
		if strings.TrimSpace(name) == "" {
			return invalidParam("Invalid grouping name")
		}
		g := c.s.groupings[id]
		if g == nil {
			return invalidParam(fmt.Sprintf("Grouping %d does not exist", id))
		}
		if other := c.s.groupingByName(g.CourseID, name); name != g.Name && other != 0 && other != id {
			return invalidParam("A different grouping with the same name already exists in the course")
		}
		if ex := c.manageGroups(g.CourseID); ex != nil {
			return ex
		}
		before := *g
		if in.has("idnumber") {
			idn := in.str("idnumber")
			if other := c.s.groupingByIDNumber(g.CourseID, idn); idn != "" && other != 0 && other != id {
				return idNumberTaken()
			}
			g.IDNumber = idn
		}
		g.Name, g.Description = name, in.str("description")
		c.onUndo(func() { *g = before })
	}
	return nil
}
