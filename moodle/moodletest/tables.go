package moodletest

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TableOptions say how WriteTables lays the site out.
type TableOptions struct {
	// Prefix is Moodle's $CFG->prefix (default "mdl_").
	Prefix string
	// Activity is the time of the newest log entry and cron run written,
	// what a replica's lag is judged by. Zero: the site's clock, as on a
	// replica that is up to date.
	Activity time.Time
	// BinaryCollation makes text sort byte by byte (MySQL's utf8mb4_bin,
	// PostgreSQL's "C"), as the simulator sorts names. Without it the
	// tables take Moodle's utf8mb4_unicode_ci on MySQL and the database's
	// collation on PostgreSQL, and a site whose group names differ only in
	// case or spacing lists them in another order than the simulator does.
	BinaryCollation bool
}

// Context ids. Course contexts are the ids courseContextID gives the file
// URLs the web services answer with; the others live where no course id
// can reach.
const (
	systemContextID   = 1
	categoryContextID = 1_000_000_000
	userContextID     = 2_000_000_000
)

// WriteTables creates in db the Moodle 4.5 tables an integration reads
// (SchemaDDL) and fills them with the site's content as Moodle stores it:
// deleted users aside, what the web services answer and what the tables
// hold are the same site, so a test can read one side and the other and
// compare. db must not hold the tables yet. Times the State does not give
// (creation, modification) are the site's clock when it was built.
func (s *Site) WriteTables(ctx context.Context, db *sql.DB, d Dialect, o TableOptions) error {
	if o.Prefix == "" {
		o.Prefix = "mdl_"
	}
	rows, err := s.tableRows(o)
	if err != nil {
		return err
	}
	// MySQL commits each DDL statement on its own: the tables are created
	// first, and filled in one transaction.
	for _, stmt := range SchemaDDL(d, o.Prefix, o.BinaryCollation) {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("creating the Moodle tables: %w\n%s", err, stmt)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, t := range moodleTables {
		if err := insertRows(ctx, tx, d, o.Prefix+t.name, rows.cols[t.name], rows.rows[t.name]); err != nil {
			return fmt.Errorf("filling %s%s: %w", o.Prefix, t.name, err)
		}
	}
	return tx.Commit()
}

// tableSet is the rows of every table, by table name without prefix.
type tableSet struct {
	cols map[string][]string
	rows map[string][][]any
}

func (ts *tableSet) add(table, columns string, values ...any) {
	if ts.cols[table] == nil {
		ts.cols[table] = strings.Split(columns, ",")
	}
	if len(values) != len(ts.cols[table]) {
		panic(fmt.Sprintf("moodletest: %s: %d values for %d columns", table, len(values), len(ts.cols[table])))
	}
	ts.rows[table] = append(ts.rows[table], values)
}

// tableRows lays the site's content out as Moodle's rows.
func (s *Site) tableRows(o TableOptions) (*tableSet, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ts := &tableSet{cols: map[string][]string{}, rows: map[string][][]any{}}
	now := s.now().Unix()
	activity := now
	if !o.Activity.IsZero() {
		activity = o.Activity.Unix()
	}
	s.configRows(ts)
	s.categoryRows(ts)
	s.courseRows(ts)
	s.userRows(ts, now)
	s.enrolRows(ts, now)
	s.groupRows(ts, now)
	s.gradeRows(ts, now)
	if err := s.completionRows(ts, now); err != nil {
		return nil, err
	}
	ts.add("logstore_standard_log", "id,eventname,component,action,target,crud,edulevel,contextid,contextlevel,contextinstanceid,userid,anonymous,timecreated,origin",
		1, `\core\event\webservice_function_called`, "core", "called", "webservice_function", "r", 0, systemContextID, 10, 0, 2, 0, activity, "ws")
	ts.add("task_scheduled", "id,component,classname,lastruntime,nextruntime,minute,hour,day,month,dayofweek",
		1, "moodle", `\core\task\session_cleanup_task`, activity, activity+60, "*", "*", "*", "*", "*")
	return ts, nil
}

func (s *Site) configRows(ts *tableSet) {
	student := int64(5)
	for _, r := range s.roles {
		if r.ShortName == "student" {
			student = r.ID
		}
	}
	cfg := [][2]string{
		{"release", s.release}, {"version", "2024100700"}, {"siteguest", "1"}, {"siteadmins", "2"},
		{"theme", "boost"}, {"themerev", s.themeRev}, {"fullnamedisplay", "language"}, {"courselistshortnames", "0"},
		{"gradebookroles", strconv.FormatInt(student, 10)}, {"lang", "en"}, {"calendartype", "gregorian"},
	}
	for i, c := range cfg {
		ts.add("config", "id,name,value", i+1, c[0], c[1])
	}
	ts.add("context", "id,contextlevel,instanceid,path,depth", systemContextID, 10, 0, "/1", 1)
}

func int01(b bool) int {
	if b {
		return 1
	}
	return 0
}

// nullIfEmpty is NULL for "", as Moodle stores an optional value not given.
func nullIfEmpty(v string) any {
	if v == "" {
		return nil
	}
	return v
}

func (s *Site) categoryRows(ts *tableSet) {
	for _, id := range s.catOrder {
		c := s.cats[id]
		ts.add("course_categories", "id,name,idnumber,description,descriptionformat,parent,sortorder,coursecount,visible,visibleold,timemodified,depth,path,theme",
			id, c.Name, c.IDNumber, c.Description, 1, c.Parent, c.sortorder, len(s.catCourses[id]), int01(c.Visible),
			int01(c.Visible), c.timemodified, c.depth, c.path, "")
		ctxPath := "/1"
		for _, p := range strings.Split(strings.Trim(c.path, "/"), "/") {
			ctxPath += "/" + strconv.FormatInt(categoryContextID+mustInt(p), 10)
		}
		ts.add("context", "id,contextlevel,instanceid,path,depth", categoryContextID+id, 40, id, ctxPath, c.depth+1)
	}
}

func mustInt(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic("moodletest: not a number: " + s)
	}
	return n
}

func (s *Site) courseRows(ts *tableSet) {
	section := int64(0)
	for _, id := range sortedKeys(s.courses) {
		c := s.courses[id]
		site := c.Format == "site"
		ts.add("course", "id,category,sortorder,fullname,shortname,idnumber,summary,summaryformat,format,showgrades,newsitems,"+
			"startdate,enddate,visible,visibleold,timecreated,timemodified,enablecompletion,cacherev,showactivitydates,showcompletionconditions",
			id, c.CategoryID, c.sortorder, c.FullName, c.ShortName, c.IDNumber, c.Summary, 1, c.Format, 1, 1,
			c.StartDate, c.EndDate, int01(c.Visible), int01(c.Visible), c.timecreated, c.timemodified, int01(!site),
			c.timemodified, 0, int01(!site))
		parent := "/1"
		depth := 2
		if cat := s.cats[c.CategoryID]; cat != nil {
			parent = "/1"
			for _, p := range strings.Split(strings.Trim(cat.path, "/"), "/") {
				parent += "/" + strconv.FormatInt(categoryContextID+mustInt(p), 10)
			}
			depth = cat.depth + 2
		}
		ctx := courseContextID(id)
		ts.add("context", "id,contextlevel,instanceid,path,depth", ctx, 50, id, parent+"/"+strconv.FormatInt(ctx, 10), depth)
		// The sections a new course gets: 0 and four more (the site course, 0 and 1).
		sections := 4
		if site {
			sections = 1
		}
		for n := 0; n <= sections; n++ {
			section++
			ts.add("course_sections", "id,course,section,summary,summaryformat,sequence,timemodified", section, id, n, "", 1, "", c.timemodified)
		}
		if !site {
			base := int64(len(ts.rows["course_format_options"]))
			ts.add("course_format_options", "id,courseid,format,sectionid,name,value", base+1, id, c.Format, 0, "hiddensections", "1")
			ts.add("course_format_options", "id,courseid,format,sectionid,name,value", base+2, id, c.Format, 0, "coursedisplay", "0")
		}
	}
}

func (s *Site) userRows(ts *tableSet, now int64) {
	for _, id := range s.userIDs {
		u := s.users[id]
		var desc any
		if u.Username == "guest" && u.ID == 1 {
			desc = "This user is a special user that allows read-only access to some courses."
		}
		ts.add("user", "id,auth,confirmed,deleted,suspended,mnethostid,username,idnumber,firstname,lastname,email,institution,"+
			"department,city,country,lang,theme,timezone,firstaccess,lastaccess,description,descriptionformat,mailformat,trackforums,"+
			"timecreated,timemodified",
			id, u.Auth, 1, 0, int01(u.Suspended), 1, u.Username, u.IDNumber, u.FirstName, u.LastName, u.Email, u.Institution,
			u.Department, u.City, u.Country, "en", "", "99", 0, 0, desc, 1, 1, 0, now, now)
		ts.add("context", "id,contextlevel,instanceid,path,depth", userContextID+id, 30, id, "/1/"+strconv.FormatInt(userContextID+id, 10), 2)
	}
	ts.add("user_info_category", "id,name,sortorder", 1, "Other fields", 1)
	for i, f := range s.fields {
		ts.add("user_info_field", "id,shortname,name,datatype,description,categoryid,sortorder,visible,defaultdata",
			i+1, f.ShortName, f.Name, f.Type, "", 1, i+1, 2, "")
	}
	n := 0
	for _, id := range s.userIDs {
		u := s.users[id]
		for i, f := range s.fields {
			if v := u.CustomFields[f.ShortName]; v != "" {
				n++
				ts.add("user_info_data", "id,userid,fieldid,data", n, id, i+1, v)
			}
		}
	}
}

func (s *Site) enrolRows(ts *tableSet, now int64) {
	student := int64(0)
	for _, r := range s.roles {
		if r.ShortName == "student" {
			student = r.ID
		}
	}
	for _, r := range s.roles {
		archetype := ""
		if slices.ContainsFunc(standardRoles, func(sr Role) bool { return sr.ShortName == r.ShortName }) {
			archetype = r.ShortName
		}
		ts.add("role", "id,name,shortname,description,sortorder,archetype", r.ID, r.Name, r.ShortName, "", r.SortOrder, archetype)
	}
	instanceOf := map[CourseMethod]int64{}
	for _, cid := range sortedKeys(s.instances) {
		for i, in := range s.instances[cid] {
			cm := CourseMethod{cid, in.method}
			instanceOf[cm] = in.id
			ts.add("enrol", "id,enrol,status,courseid,sortorder,roleid,timecreated,timemodified",
				in.id, in.method, int01(s.disabled[cm]), cid, i, student, now, now)
		}
	}
	ue, ra := 0, 0
	for _, cid := range sortedKeys(s.enrol) {
		ce := s.enrol[cid]
		for _, uid := range ce.ids {
			m := ce.users[uid]
			for _, e := range m.enrols {
				ue++
				ts.add("user_enrolments", "id,status,enrolid,userid,timestart,timeend,modifierid,timecreated,timemodified",
					ue, int01(e.Suspended), instanceOf[CourseMethod{cid, e.Method}], uid, e.TimeStart, e.TimeEnd, 2, now, now)
			}
			for _, r := range m.roles {
				ra++
				ts.add("role_assignments", "id,roleid,contextid,userid,timemodified,modifierid,component,itemid,sortorder",
					ra, r, courseContextID(cid), uid, now, 2, "", 0, 0)
			}
		}
	}
}

func (s *Site) groupRows(ts *tableSet, now int64) {
	gm := 0
	for _, id := range sortedKeys(s.groups) {
		g := s.groups[id]
		ts.add("groups", "id,courseid,idnumber,name,description,descriptionformat,enrolmentkey,visibility,participation,timecreated,timemodified",
			id, g.CourseID, g.IDNumber, g.Name, g.Description, g.descFormat, nullIfEmpty(g.enrolmentKey), g.visibility,
			int01(g.participation), now, now)
		for _, uid := range sortedKeys(g.members) {
			gm++
			ts.add("groups_members", "id,groupid,userid,timeadded,component,itemid", gm, id, uid, now, "", 0)
		}
	}
	gg := 0
	for _, id := range sortedKeys(s.groupings) {
		g := s.groupings[id]
		ts.add("groupings", "id,courseid,name,idnumber,description,descriptionformat,timecreated,timemodified",
			id, g.CourseID, g.Name, g.IDNumber, g.Description, g.descFormat, now, now)
		for _, gid := range g.Groups {
			gg++
			ts.add("groupings_groups", "id,groupingid,groupid,timeadded", gg, id, gid, now)
		}
	}
}

// gradeRows writes the gradebook as Moodle leaves it after a regrade: each
// graded item's grade with its aggregation weight, and the course total's
// grade holding the user's sum and adjusted maximum (natural aggregation
// with empty grades excluded, as the simulator's grade report computes).
func (s *Site) gradeRows(ts *tableSet, now int64) {
	const cols = "id,itemid,userid,rawgrade,rawgrademax,rawgrademin,finalgrade,timecreated,timemodified,aggregationstatus,aggregationweight"
	gg := 0
	for _, cid := range sortedKeys(s.courseItems) {
		items := slices.Clone(s.courseItems[cid])
		slices.Sort(items)
		gradeCat := s.gradeCats[cid]
		for i, id := range items {
			it := s.items[id]
			isCourse := it.ItemType == "course"
			var itemname, itemmodule, iteminstance, itemnumber, idnumber, categoryid any
			if isCourse {
				iteminstance = gradeCat
			} else {
				itemname, itemnumber, idnumber, categoryid = it.ItemName, 0, it.IDNumber, gradeCat
			}
			if it.ItemType == "mod" {
				itemmodule = it.ItemModule
			}
			ts.add("grade_items", "id,courseid,categoryid,itemname,itemtype,itemmodule,iteminstance,itemnumber,idnumber,grademax,grademin,sortorder,timecreated,timemodified",
				id, cid, categoryid, itemname, it.ItemType, itemmodule, iteminstance, itemnumber, idnumber, it.GradeMax, it.GradeMin, i+1, now, now)
		}
		users := map[int64]struct{}{}
		for _, id := range items {
			for uid := range s.grades[id] {
				users[uid] = struct{}{}
			}
		}
		for _, uid := range sortedKeys(users) {
			sum, sumMax, lastGraded, graded := s.courseTotal(items, uid)
			for _, id := range items {
				it := s.items[id]
				if it.ItemType == "course" {
					if graded > 0 {
						gg++
						ts.add("grade_grades", cols, gg, id, uid, nil, sumMax, it.GradeMin, sum, lastGraded, lastGraded, "used", nil)
					}
					continue
				}
				if g := s.gradeOf(id, uid); g != nil {
					gg++
					ts.add("grade_grades", cols, gg, id, uid, *g.Raw, it.GradeMax, it.GradeMin, *g.Raw, g.Updated, g.Updated, "used", itemWeight(it, sumMax))
				}
			}
		}
	}
}

// completionRows writes course completions, and each tracked course's
// activities with the ones a user completed, as many as make their
// progress: a course of n tracked activities can show only k/n*100, so a
// progress no n up to 100 gives exactly is an error.
func (s *Site) completionRows(ts *tableSet, now int64) error {
	cc, cm, cmc := 0, 0, 0
	for _, cid := range sortedKeys(s.completion) {
		ts.add("course_completion_criteria", "id,course,criteriatype", len(ts.rows["course_completion_criteria"])+1, cid, 1)
		for _, uid := range sortedKeys(s.completion[cid]) {
			c := s.completion[cid][uid]
			var done any
			if c.Completed {
				done = c.TimeCompleted
			}
			cc++
			ts.add("course_completions", "id,userid,course,timeenrolled,timestarted,timecompleted,reaggregate", cc, uid, cid, 0, 0, done, 0)
		}
		if !s.tracksActivities(cid) {
			continue
		}
		n, counts, err := s.activityCounts(cid)
		if err != nil {
			return err
		}
		first := cm + 1
		for i := 0; i < n; i++ {
			cm++
			ts.add("course_modules", "id,course,module,instance,section,added,visible,completion,deletioninprogress", cm, cid, 1, cm, 1, now, 1, 1, 0)
		}
		for _, uid := range sortedKeys(counts) {
			for k := 0; k < counts[uid]; k++ {
				cmc++
				ts.add("course_modules_completion", "id,coursemoduleid,userid,completionstate,timemodified", cmc, int64(first+k), uid, 1, now)
			}
		}
	}
	return nil
}

// activityCounts finds the smallest number of tracked activities that gives
// every progress of a course exactly, and how many each user completed.
func (s *Site) activityCounts(courseID int64) (int, map[int64]int, error) {
	for n := 1; n <= 100; n++ {
		counts := map[int64]int{}
		ok := true
		for uid, c := range s.completion[courseID] {
			if c.Progress == nil {
				continue
			}
			k := int(math.Round(*c.Progress / 100 * float64(n)))
			if float64(k)/float64(n)*100 != *c.Progress {
				ok = false
				break
			}
			counts[uid] = k
		}
		if ok {
			return n, counts, nil
		}
	}
	return 0, nil, fmt.Errorf("course %d: a progress of its completions is not k/n*100 for any n up to 100 activities", courseID)
}

// insertRows inserts rows into table, many per statement.
func insertRows(ctx context.Context, tx *sql.Tx, d Dialect, table string, cols []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	per := max(1, 20000/len(cols))
	for start := 0; start < len(rows); start += per {
		batch := rows[start:min(start+per, len(rows))]
		var b strings.Builder
		fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", table, strings.Join(cols, ","))
		args := make([]any, 0, len(batch)*len(cols))
		for i, r := range batch {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('(')
			for j, v := range r {
				if j > 0 {
					b.WriteByte(',')
				}
				args = append(args, v)
				if d == Postgres {
					b.WriteString("$" + strconv.Itoa(len(args)))
				} else {
					b.WriteByte('?')
				}
			}
			b.WriteByte(')')
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}
