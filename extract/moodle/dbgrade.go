package moodle

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// gradesAndCompletion reads the optional entities once enrolments have
// told who is graded and who is active where.
func (r *dbRead) gradesAndCompletion(ctx context.Context, current map[string]bool) error {
	x := r.x
	items, grades, compl := x.open(ctx, entGradeItems), x.open(ctx, entGrades), x.open(ctx, entCompletion)
	if items != nil || grades != nil {
		// A limit naming no category fails these entities alone, as over
		// web services.
		if graded, err := r.limitTo("grades", x.site.Grades.Categories, current); err != nil {
			items.abort(err, true)
			grades.abort(err, true)
		} else if err := r.grades(ctx, items, grades, graded); err != nil {
			return err
		}
	}
	if compl != nil {
		if tracked, err := r.limitTo("completion", x.site.Completion.Categories, current); err != nil {
			compl.abort(err, true)
		} else if err := r.completion(ctx, compl, tracked); err != nil {
			return err
		}
	}
	return nil
}

// limitTo is the scopes of the courses within the configured categories
// (every current course when there are none).
func (r *dbRead) limitTo(what string, idnumbers []string, current map[string]bool) (map[string]bool, error) {
	if len(idnumbers) == 0 {
		return current, nil
	}
	in, err := limit(what, r.cats, nil, idnumbers)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, c := range r.courses {
		if in[c.category] && current[c.scope()] {
			out[c.scope()] = true
		}
	}
	return out, nil
}

// dbGradeItem is a grade item as the user report shows it.
type dbGradeItem struct {
	id                                                   int64
	itemType                                             string
	itemName, itemModule, idnumber                       sql.NullString
	itemInstance, itemNumber, categoryID, outcome, scale sql.NullInt64
	locked                                               int64
	gradeMin, gradeMax                                   float64
}

// dbGrade is one user's grade on an item.
type dbGrade struct {
	final, rawMax, weight      sql.NullFloat64
	modified                   sql.NullInt64
	hidden, locked, overridden int64
	feedback                   sql.NullString
}

// grades reads gradereport_user_get_grade_items for every course in
// scopes: each graded user's (actively enrolled, with a gradebook role)
// line for every item, the course total last, split into the item and the
// user's grade as the web-service read splits them. The database holds what
// Moodle's last regrade left; a course Moodle has yet to regrade
// (needsupdate) cannot be read that way and is a failed scope.
func (r *dbRead) grades(ctx context.Context, itemsOut, gradesOut *entityOut, scopes map[string]bool) error {
	byCourse := map[int64][]dbGradeItem{}
	stale := map[int64]bool{}
	var (
		it          dbGradeItem
		courseID    int64
		needsUpdate int64
	)
	err := r.q.each(ctx, "grade items", `SELECT courseid, id, itemname, itemtype, itemmodule, iteminstance, itemnumber,
			idnumber, categoryid, outcomeid, scaleid, locked, grademin, grademax, needsupdate
		FROM {grade_items}
		ORDER BY courseid, CASE WHEN itemtype = 'course' THEN 1 ELSE 0 END, sortorder, id`, nil,
		[]any{&courseID, &it.id, &it.itemName, &it.itemType, &it.itemModule, &it.itemInstance, &it.itemNumber, &it.idnumber,
			&it.categoryID, &it.outcome, &it.scale, &it.locked, &it.gradeMin, &it.gradeMax, &needsUpdate},
		func() error {
			byCourse[courseID] = append(byCourse[courseID], it)
			if needsUpdate != 0 {
				stale[courseID] = true
			}
			return nil
		})
	if err != nil {
		return err
	}
	type key struct{ item, user int64 }
	grades := map[key]dbGrade{}
	var (
		k key
		g dbGrade
	)
	err = r.q.each(ctx, "grades", `SELECT g.itemid, g.userid, g.finalgrade, g.rawgrademax, g.aggregationweight,
			g.timemodified, g.hidden, g.locked, g.overridden, g.feedback
		FROM {grade_grades} g JOIN {grade_items} i ON i.id = g.itemid`, nil,
		[]any{&k.item, &k.user, &g.final, &g.rawMax, &g.weight, &g.modified, &g.hidden, &g.locked, &g.overridden, &g.feedback},
		func() error { grades[k] = g; return nil })
	if err != nil {
		return err
	}
	r.x.expect(entGradeItems, len(scopes))
	r.x.expect(entGrades, len(scopes))
	var full jsonObj
	for _, c := range r.courses {
		scope := c.scope()
		if !scopes[scope] {
			continue
		}
		if stale[c.id] {
			err := fmt.Errorf("course %d has grades Moodle has not recalculated yet (needsupdate): they are read the next time", c.id)
			itemsOut.fail(scope, err)
			gradesOut.fail(scope, err)
			r.x.done(entGradeItems, 1)
			continue
		}
		seen := map[int64]bool{}
		for _, uid := range r.graded[c.id] {
			// A user without any grade row in the course (a course whose
			// only item is its fresh total) gets the default feedback
			// format, as the report shows it.
			anyRow := slices.ContainsFunc(byCourse[c.id], func(it dbGradeItem) bool {
				_, ok := grades[key{it.id, uid}]
				return ok
			})
			for i := range byCourse[c.id] {
				item := &byCourse[c.id][i]
				gr, has := grades[key{item.id, uid}]
				raw, err := r.gradeItem(&full, item, gr, has, anyRow)
				if err != nil {
					return err
				}
				itemPayload, gradePayload, err := splitGradeItem(raw)
				if err != nil {
					return fmt.Errorf("grade item %d of user %d: %w", item.id, uid, err)
				}
				ik := scope + ":" + strconv.FormatInt(item.id, 10)
				// Items repeat for every user; the first user's copy is landed.
				if !seen[item.id] {
					seen[item.id] = true
					if err := itemsOut.write(ctx, ik, scope, itemPayload); err != nil {
						return err
					}
				}
				if err := gradesOut.write(ctx, ik+":"+strconv.FormatInt(uid, 10), scope, gradePayload); err != nil {
					return err
				}
			}
		}
		itemsOut.complete(scope)
		gradesOut.complete(scope)
		r.x.done(entGradeItems, 1)
		r.x.done(entGrades, 1)
	}
	for _, o := range []*entityOut{itemsOut, gradesOut} {
		if o == nil {
			continue
		}
		if err := r.closeGone(ctx, o, scopes); err != nil {
			return err
		}
		o.commit(ctx)
	}
	return nil
}

// gradeItem writes one user's line of the grade report for an item, in the
// order of the report's return description.
func (r *dbRead) gradeItem(j *jsonObj, it *dbGradeItem, g dbGrade, has, anyRow bool) ([]byte, error) {
	isCourse := it.itemType == "course"
	var raw *float64
	if has && g.final.Valid {
		raw = &g.final.Float64
	}
	gmin, gmax := it.gradeMin, it.gradeMax
	if isCourse && raw != nil && g.rawMax.Valid {
		// Natural aggregation keeps the user's adjusted maximum here.
		gmax = g.rawMax.Float64
	}
	j.reset()
	j.num("id", it.id)
	nullStr(j, "itemname", it.itemName)
	j.str("itemtype", it.itemType)
	nullStr(j, "itemmodule", it.itemModule)
	nullNum(j, "iteminstance", it.itemInstance)
	nullNum(j, "itemnumber", it.itemNumber)
	nullStr(j, "idnumber", it.idnumber)
	nullNum(j, "categoryid", it.categoryID)
	nullNum(j, "outcomeid", it.outcome)
	nullNum(j, "scaleid", it.scale)
	j.boolean("locked", it.locked != 0)
	if !isCourse {
		weight := 0.0
		if raw != nil && g.weight.Valid {
			weight = g.weight.Float64
		}
		j.flt("weightraw", weight)
		j.str("weightformatted", fmt.Sprintf("%.2f %%", weight*100))
		if raw == nil {
			j.str("status", "novalue")
		}
	}
	if raw == nil {
		j.null("graderaw")
	} else {
		j.flt("graderaw", *raw)
	}
	j.null("gradedatesubmitted")
	if raw == nil || !g.modified.Valid {
		j.null("gradedategraded")
	} else {
		j.num("gradedategraded", g.modified.Int64)
	}
	j.boolean("gradehiddenbydate", g.hidden > 1 && g.hidden > r.now)
	j.boolean("gradeneedsupdate", false)
	j.boolean("gradeishidden", g.hidden == 1 || g.hidden > r.now)
	j.boolean("gradeislocked", g.locked != 0)
	j.boolean("gradeisoverridden", g.overridden != 0)
	if raw == nil {
		j.str("gradeformatted", "-")
	} else {
		j.str("gradeformatted", fmt.Sprintf("%.2f", *raw))
	}
	j.flt("grademin", gmin)
	j.flt("grademax", gmax)
	j.str("rangeformatted", strconv.FormatFloat(math.Round(gmin), 'f', -1, 64)+"&ndash;"+strconv.FormatFloat(math.Round(gmax), 'f', -1, 64))
	if raw == nil || gmax == gmin {
		j.str("percentageformatted", "-")
	} else {
		j.str("percentageformatted", fmt.Sprintf("%.2f %%", (*raw-gmin)/(gmax-gmin)*100))
	}
	j.str("feedback", g.feedback.String)
	if anyRow {
		j.num("feedbackformat", 2)
	} else {
		j.num("feedbackformat", 0)
	}
	return j.close(), nil
}

func nullStr(j *jsonObj, k string, v sql.NullString) {
	if v.Valid {
		j.str(k, v.String)
	} else {
		j.null(k)
	}
}

func nullNum(j *jsonObj, k string, v sql.NullInt64) {
	if v.Valid {
		j.num(k, v.Int64)
	} else {
		j.null(k)
	}
}

// dbCourseEntry is what core_enrol_get_users_courses shows of a course.
type dbCourseEntry struct {
	id, category, visible, summaryFormat, showGrades, completion, start, end, marker int64
	activityDates, modified, context                                                 int64
	conditions                                                                       sql.NullInt64
	shortname, fullname, idnumber, format, lang                                      string
	summary                                                                          sql.NullString
}

// completion reads core_enrol_get_users_courses for every user actively
// enrolled in a course in scopes, keeping those courses' entries: each
// user is a scope, keyed <userid>:<courseid>.
func (r *dbRead) completion(ctx context.Context, o *entityOut, scopes map[string]bool) error {
	entries := map[int64]*dbCourseEntry{}
	var e dbCourseEntry
	err := r.q.each(ctx, "courses for completion", `SELECT c.id, c.category, c.visible, c.summaryformat, c.showgrades,
			c.enablecompletion, c.startdate, c.enddate, c.marker, c.showactivitydates, c.timemodified, ctx.id,
			c.showcompletionconditions, c.shortname, c.fullname, c.idnumber, c.format, c.lang, c.summary
		FROM {course} c JOIN {context} ctx ON ctx.contextlevel = 50 AND ctx.instanceid = c.id`, nil,
		[]any{&e.id, &e.category, &e.visible, &e.summaryFormat, &e.showGrades, &e.completion, &e.start, &e.end, &e.marker,
			&e.activityDates, &e.modified, &e.context, &e.conditions, &e.shortname, &e.fullname, &e.idnumber, &e.format,
			&e.lang, &e.summary},
		func() error {
			if scopes[strconv.FormatInt(e.id, 10)] {
				cp := e
				entries[e.id] = &cp
			}
			return nil
		})
	if err != nil {
		return err
	}
	var (
		cid, uid, n int64
		at          sql.NullInt64
		name        string
	)
	tracked := map[int64]int64{}
	err = r.q.each(ctx, "tracked activities", `SELECT course, COUNT(*) FROM {course_modules}
		WHERE completion > 0 AND deletioninprogress = 0 AND visible = 1 GROUP BY course`, nil,
		[]any{&cid, &n}, func() error { tracked[cid] = n; return nil })
	if err != nil {
		return err
	}
	done := map[courseUser]int64{}
	err = r.q.each(ctx, "completed activities", `SELECT cm.course, cmc.userid, COUNT(*)
		FROM {course_modules_completion} cmc JOIN {course_modules} cm ON cm.id = cmc.coursemoduleid
		WHERE cm.completion > 0 AND cm.deletioninprogress = 0 AND cm.visible = 1 AND cmc.completionstate IN (1, 2)
		GROUP BY cm.course, cmc.userid`, nil,
		[]any{&cid, &uid, &n}, func() error { done[courseUser{cid, uid}] = n; return nil })
	if err != nil {
		return err
	}
	completed := map[courseUser]bool{}
	err = r.q.each(ctx, "course completions", "SELECT course, userid, timecompleted FROM {course_completions}", nil,
		[]any{&cid, &uid, &at}, func() error {
			if at.Valid {
				completed[courseUser{cid, uid}] = true
			}
			return nil
		})
	if err != nil {
		return err
	}
	criteria := map[int64]bool{}
	err = r.q.each(ctx, "completion criteria", "SELECT DISTINCT course FROM {course_completion_criteria}", nil,
		[]any{&cid}, func() error { criteria[cid] = true; return nil })
	if err != nil {
		return err
	}
	lastAccess := map[courseUser]int64{}
	err = r.q.each(ctx, "last course access", "SELECT courseid, userid, timeaccess FROM {user_lastaccess}", nil,
		[]any{&cid, &uid, &n}, func() error { lastAccess[courseUser{cid, uid}] = n; return nil })
	if err != nil {
		return err
	}
	favourite := map[courseUser]bool{}
	err = r.q.each(ctx, "favourite courses", `SELECT itemid, userid FROM {favourite}
		WHERE component = 'core_course' AND itemtype = 'courses'`, nil,
		[]any{&cid, &uid}, func() error { favourite[courseUser{cid, uid}] = true; return nil })
	if err != nil {
		return err
	}
	const hiddenPref = "block_myoverview_hidden_course_"
	hidden := map[courseUser]bool{}
	err = r.q.each(ctx, "hidden courses", "SELECT userid, name FROM {user_preferences} WHERE name LIKE ?", []any{hiddenPref + "%"},
		[]any{&uid, &name}, func() error {
			if id, err := strconv.ParseInt(strings.TrimPrefix(name, hiddenPref), 10, 64); err == nil {
				hidden[courseUser{id, uid}] = true
			}
			return nil
		})
	if err != nil {
		return err
	}
	// The users read: actively enrolled in a course whose completion is read.
	var users []int64
	for u, courses := range r.activeIn {
		if slices.ContainsFunc(courses, func(c int64) bool { return entries[c] != nil }) {
			users = append(users, u)
		}
	}
	slices.Sort(users)
	r.x.expect(entCompletion, len(users))
	current := make(map[string]bool, len(users))
	var j jsonObj
	for _, u := range users {
		scope := strconv.FormatInt(u, 10)
		current[scope] = true
		for _, c := range r.activeIn[u] {
			ce := entries[c]
			cu := courseUser{c, u}
			// enrol_get_users_courses: a hidden course only for a user who
			// may see it there.
			if ce == nil || ce.visible == 0 && !r.seesHidden[cu] {
				continue
			}
			j.reset()
			j.num("id", ce.id)
			j.str("shortname", ce.shortname)
			j.str("fullname", ce.fullname)
			j.str("displayname", ce.fullname)
			j.num("enrolledusercount", r.enrolled[c])
			j.str("idnumber", ce.idnumber)
			j.num("visible", ce.visible)
			j.str("summary", ce.summary.String)
			j.num("summaryformat", ce.summaryFormat)
			j.str("format", ce.format)
			j.str("courseimage", r.siteURL+"/pluginfile.php/"+strconv.FormatInt(ce.context, 10)+"/course/generated/course.svg")
			j.boolean("showgrades", ce.showGrades != 0)
			j.str("lang", ce.lang)
			j.boolean("enablecompletion", ce.completion != 0)
			j.boolean("completionhascriteria", criteria[c])
			// Tracked: actively enrolled with a role Moodle counts
			// (moodle/course:isincompletionreports, the gradebook roles).
			_, isTracked := slices.BinarySearch(r.graded[c], u)
			j.boolean("completionusertracked", isTracked)
			j.num("category", ce.category)
			if total := tracked[c]; total > 0 && ce.completion != 0 {
				j.flt("progress", float64(done[cu])/float64(total)*100)
			} else {
				j.null("progress")
			}
			j.boolean("completed", completed[cu])
			j.num("startdate", ce.start)
			j.num("enddate", ce.end)
			j.num("marker", ce.marker)
			if t, ok := lastAccess[cu]; ok {
				j.num("lastaccess", t)
			} else {
				j.null("lastaccess")
			}
			j.boolean("isfavourite", favourite[cu])
			j.boolean("hidden", hidden[cu])
			j.raw("overviewfiles", []byte("[]"))
			j.boolean("showactivitydates", ce.activityDates != 0)
			j.boolean("showcompletionconditions", ce.conditions.Int64 != 0)
			j.num("timemodified", ce.modified)
			if err := o.write(ctx, scope+":"+strconv.FormatInt(c, 10), scope, j.close()); err != nil {
				return err
			}
		}
		o.complete(scope)
		r.x.done(entCompletion, 1)
	}
	if err := r.closeGone(ctx, o, current); err != nil {
		return err
	}
	o.commit(ctx)
	return nil
}
