package moodletest

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

func getGradeItems(c *call) *exception {
	courseID, userID, groupID := c.a.int("courseid"), c.a.int("userid"), c.a.int("groupid")
	cr := c.s.courses[courseID]
	if cr == nil {
		return missingRecord("course", "SELECT * FROM {course} WHERE id = ?", courseID)
	}
	if ex := c.validateCourse(courseID); ex != nil {
		return ex
	}
	var users []int64
	if userID != 0 {
		if c.s.users[userID] == nil {
			return missingRecord("user", "SELECT * FROM {user} WHERE id = ? AND deleted = ?", userID, 0)
		}
		if !c.admin && c.user.ID != userID && !c.can(CapGradeViewAll, courseID) {
			return moodleException("nopermissiontoviewgrades", "Cannot view grades.")
		}
		if c.roleToken() && !c.can(CapGradeReportUserView, courseID) {
			return noPermission(capName(CapGradeReportUserView))
		}
		users = []int64{userID}
	} else {
		if !c.can(CapGradeViewAll, courseID) {
			return moodleException("nopermissiontoviewgrades", "Cannot view grades.")
		}
		// The graded users: active students, as $CFG->gradebookroles says.
		if ce := c.s.enrol[courseID]; ce != nil {
			for _, uid := range ce.ids {
				m := ce.users[uid]
				if !m.isActive(c.now) || !slices.ContainsFunc(m.roles, func(r int64) bool {
					return c.s.roleByID[r] != nil && c.s.roleByID[r].ShortName == "student"
				}) {
					continue
				}
				if groupID != 0 {
					if g := c.s.groups[groupID]; g == nil {
						continue
					} else if _, in := g.members[uid]; !in {
						continue
					}
				}
				users = append(users, uid)
			}
		}
		// The report lists its users by last name, then first name.
		slices.SortStableFunc(users, func(a, b int64) int {
			ua, ub := c.s.users[a], c.s.users[b]
			if ua.LastName != ub.LastName {
				return strings.Compare(ua.LastName, ub.LastName)
			}
			return strings.Compare(ua.FirstName, ub.FirstName)
		})
	}
	items := slices.Clone(c.s.courseItems[courseID])
	slices.SortFunc(items, func(a, b int64) int {
		ta, tb := c.s.items[a].ItemType == "course", c.s.items[b].ItemType == "course"
		switch {
		case ta && !tb:
			return 1
		case tb && !ta:
			return -1
		}
		return int(a - b)
	})
	o := c.o
	o.obj()
	o.klist("usergrades")
	for _, uid := range users {
		u := c.s.users[uid]
		o.obj()
		o.knum("courseid", courseID)
		o.kstr("courseidnumber", cr.IDNumber)
		o.knum("userid", uid)
		o.kstr("userfullname", fullName(u))
		o.kstr("useridnumber", u.IDNumber)
		o.knum("maxdepth", 2)
		o.klist("gradeitems")
		c.writeGradeItems(items, uid)
		o.end()
		o.end()
	}
	o.end()
	o.klist("warnings")
	o.end()
	o.end()
	return nil
}

// writeGradeItems writes one user's grade items, the course total last,
// aggregated the way Moodle's default "natural" aggregation with empty
// grades excluded does: the total is the sum of the graded items, its
// maximum the sum of their maxima, and each graded item weighs its share.
func (c *call) writeGradeItems(items []int64, userID int64) {
	o := c.o
	grade := func(itemID int64) *Grade { return c.s.gradeOf(itemID, userID) }
	sum, sumMax, lastGraded, graded := c.s.courseTotal(items, userID)
	if len(items) == 0 {
		return
	}
	// A user without any grade row in the course (a course whose only item
	// is its fresh total) gets the default feedback format, 0; one with
	// grades gets the site's, 2.
	feedbackFormat := int64(0)
	for _, id := range items {
		if byUser := c.s.grades[id]; byUser != nil && byUser[userID] != nil {
			feedbackFormat = 2
		}
	}
	gradeCat := c.s.gradeCats[c.s.items[items[0]].CourseID]
	for _, id := range items {
		it := c.s.items[id]
		isCourse := it.ItemType == "course"
		o.obj()
		o.knum("id", id)
		if isCourse {
			o.knull("itemname")
		} else {
			o.kstr("itemname", it.ItemName)
		}
		o.kstr("itemtype", it.ItemType)
		if it.ItemType == "mod" {
			o.kstr("itemmodule", it.ItemModule)
		} else {
			o.knull("itemmodule")
		}
		if isCourse {
			o.knum("iteminstance", gradeCat)
			o.knull("itemnumber")
			o.knull("idnumber")
			o.knull("categoryid")
		} else {
			o.knull("iteminstance")
			o.knum("itemnumber", 0)
			o.kstr("idnumber", it.IDNumber)
			o.knum("categoryid", gradeCat)
		}
		o.knull("outcomeid")
		o.knull("scaleid")
		o.kbool("locked", false)
		var raw *float64
		var dateGraded int64
		gmin, gmax := it.GradeMin, it.GradeMax
		if isCourse {
			if graded > 0 {
				raw = &sum
				gmax = sumMax
				dateGraded = lastGraded
			}
		} else {
			if g := grade(id); g != nil {
				raw, dateGraded = g.Raw, g.Updated
			}
			weight := 0.0
			if raw != nil {
				weight = itemWeight(it, sumMax)
			}
			o.kflt("weightraw", weight)
			o.kstr("weightformatted", fmt.Sprintf("%.2f %%", weight*100))
			if raw == nil {
				o.kstr("status", "novalue")
			}
		}
		o.kfltp("graderaw", raw)
		o.knull("gradedatesubmitted")
		if raw == nil {
			o.knull("gradedategraded")
		} else {
			o.knum("gradedategraded", dateGraded)
		}
		o.kbool("gradehiddenbydate", false)
		o.kbool("gradeneedsupdate", false)
		o.kbool("gradeishidden", false)
		o.kbool("gradeislocked", false)
		o.kbool("gradeisoverridden", false)
		if raw == nil {
			o.kstr("gradeformatted", "-")
		} else {
			o.kstr("gradeformatted", fmt.Sprintf("%.2f", *raw))
		}
		o.kflt("grademin", gmin)
		o.kflt("grademax", gmax)
		o.kstr("rangeformatted", phpFloat(math.Round(gmin))+"&ndash;"+phpFloat(math.Round(gmax)))
		if raw == nil || gmax == gmin {
			o.kstr("percentageformatted", "-")
		} else {
			o.kstr("percentageformatted", fmt.Sprintf("%.2f %%", (*raw-gmin)/(gmax-gmin)*100))
		}
		o.kstr("feedback", "")
		o.knum("feedbackformat", feedbackFormat)
		o.end()
	}
}

func getCompletionStatus(c *call) *exception {
	courseID, userID := c.a.int("courseid"), c.a.int("userid")
	if c.s.courses[courseID] == nil {
		return missingRecord("course", "SELECT * FROM {course} WHERE id = ?", courseID)
	}
	if ex := c.validateCourse(courseID); ex != nil {
		return ex
	}
	if c.s.users[userID] == nil {
		return missingRecord("user", "SELECT * FROM {user} WHERE id = ? AND deleted = ?", userID, 0)
	}
	if !c.admin && c.user.ID != userID && !c.can(CapGradeViewAll, courseID) && !c.can(CapCompletionView, courseID) {
		return noPermission("View the course completion report")
	}
	// Only active students are tracked for completion.
	if m := c.s.member(courseID, userID); m == nil || !m.isActive(c.now) || !slices.ContainsFunc(m.roles, func(r int64) bool {
		return c.s.roleByID[r] != nil && c.s.roleByID[r].ShortName == "student"
	}) {
		if c.user != nil && c.user.ID == userID {
			return moodleException("notenroled", "You are not enrolled in this course")
		}
		return moodleException("usernotenroled", "User is not enrolled in this course")
	}
	// A course has completion criteria here when any completion is recorded
	// for it (a self-completion criterion).
	if len(c.s.completion[courseID]) == 0 {
		return moodleException("nocriteriaset", "No completion criteria set for this course")
	}
	comp := c.s.completion[courseID][userID]
	done := comp != nil && comp.Completed
	o := c.o
	o.obj()
	o.kobj("completionstatus")
	o.kbool("completed", done)
	o.knum("aggregation", 1)
	o.klist("completions")
	o.obj()
	o.knum("type", 1)
	o.kstr("title", "Self completion")
	if done {
		o.kstr("status", "Yes")
	} else {
		o.kstr("status", "No")
	}
	o.kbool("complete", done)
	if done {
		o.knum("timecompleted", comp.TimeCompleted)
	} else {
		o.knull("timecompleted")
	}
	o.kobj("details")
	o.kstr("type", "Self completion")
	o.kstr("criteria", "Self completion")
	o.kstr("requirement", "Marking yourself complete")
	o.kstr("status", "")
	o.end()
	o.end()
	o.end()
	o.end()
	o.klist("warnings")
	o.end()
	o.end()
	return nil
}

// gradeOf is userID's grade on an item, nil when the user has none.
func (s *Site) gradeOf(itemID, userID int64) *Grade {
	if byUser := s.grades[itemID]; byUser != nil {
		if g := byUser[userID]; g != nil && g.Raw != nil {
			return g
		}
	}
	return nil
}

// courseTotal aggregates one user's grades on a course's items the way
// Moodle's default natural aggregation with empty grades excluded does: the
// total is the sum of the graded items, its maximum the sum of their maxima.
func (s *Site) courseTotal(items []int64, userID int64) (sum, sumMax float64, lastGraded int64, graded int) {
	for _, id := range items {
		it := s.items[id]
		if it.ItemType == "course" {
			continue
		}
		if g := s.gradeOf(id, userID); g != nil {
			sum += *g.Raw
			sumMax += it.GradeMax
			lastGraded = max(lastGraded, g.Updated)
			graded++
		}
	}
	return sum, sumMax, lastGraded, graded
}

// itemWeight is a graded item's share of the total's maximum, as natural
// aggregation stores it in grade_grades.aggregationweight.
func itemWeight(it *GradeItem, sumMax float64) float64 {
	if sumMax <= 0 {
		return 0
	}
	return math.Round(it.GradeMax/sumMax*100000) / 100000
}
