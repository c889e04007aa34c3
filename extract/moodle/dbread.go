package moodle

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// dbRead is one read of a site's database, in one snapshot. Each method
// reads what one or more web-service functions would answer and lands it
// in the same shape; the comments name the function whose answer it
// reproduces.
type dbRead struct {
	x   *extraction
	q   *querier
	now int64 // Unix seconds: enrolment dates are judged against it

	cfg     map[string]string // the mdl_config values used
	siteID  int64             // the front page course
	siteURL string
	courses []course // id order
	cats    []category

	// Read with the enrolments, for grades and completion.
	enrolled map[int64]int64   // course → users enrolled, whatever the state
	activeIn map[int64][]int64 // user → courses they are actively enrolled in, ascending
	graded   map[int64][]int64 // course → actively enrolled users with a gradebook role, ascending
	// seesHidden are the enrolments whose user may see the course when it
	// is hidden (a role holding moodle/course:viewhiddencourses there:
	// teachers and managers, not students).
	seesHidden map[courseUser]bool
}

// configNames are the site settings a read uses.
var configNames = []string{"release", "version", "siteguest", "theme", "themerev", "fullnamedisplay",
	"courselistshortnames", "gradebookroles"}

func (r *dbRead) run(ctx context.Context) error {
	x := r.x
	r.siteURL = strings.TrimRight(x.site.URL, "/")
	if err := r.readConfig(ctx); err != nil {
		return err
	}
	if err := r.checkLag(ctx); err != nil {
		return err
	}
	if err := r.siteInfo(ctx); err != nil {
		return err
	}
	needPerCourse := x.land[entEnrolments] || x.land[entRoles] || x.land[entGroups] || x.land[entGroupings] ||
		x.land[entGradeItems] || x.land[entGrades] || x.land[entCompletion] || x.land[entEnrolMethods]
	needCategories := x.land[entCategories] ||
		(x.land[entGrades] || x.land[entGradeItems]) && len(x.site.Grades.Categories) > 0 ||
		x.land[entCompletion] && len(x.site.Completion.Categories) > 0
	if needCategories {
		if err := r.categories(ctx); err != nil {
			return err
		}
	}
	if x.land[entCourses] || needPerCourse {
		if err := r.readCourses(ctx); err != nil {
			return err
		}
	}
	if x.land[entUsers] || x.land[entProfileFields] {
		if err := r.users(ctx); err != nil {
			return err
		}
	}
	if needPerCourse {
		return r.perCourse(ctx)
	}
	return nil
}

func (r *dbRead) readConfig(ctx context.Context) error {
	r.cfg = map[string]string{}
	var name, value string
	args := make([]any, len(configNames))
	for i, n := range configNames {
		args[i] = n
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")
	err := r.q.each(ctx, "the site's settings", "SELECT name, value FROM {config} WHERE name IN ("+marks+")", args,
		[]any{&name, &value}, func() error { r.cfg[name] = value; return nil })
	if err != nil {
		return err
	}
	if r.cfg["release"] == "" {
		return fmt.Errorf("%sconfig holds no release: this is not a Moodle database (or the prefix %q is wrong)",
			r.q.prefix, r.q.prefix)
	}
	var siteName string
	err = r.q.each(ctx, "the front page course", "SELECT id, fullname FROM {course} WHERE category = 0 ORDER BY id", nil,
		[]any{&r.siteID, &siteName}, func() error {
			if r.cfg["sitename"] == "" {
				r.cfg["sitename"] = siteName
			}
			return nil
		})
	if err != nil {
		return err
	}
	if r.siteID == 0 {
		return fmt.Errorf("%scourse holds no front page course (category 0): this is not a Moodle database", r.q.prefix)
	}
	return nil
}

// checkLag refuses a database whose newest activity is older than max_lag.
// Moodle's log store (a line per request) and its cron (every minute) are
// the heartbeat; modification times stand in where they are absent.
func (r *dbRead) checkLag(ctx context.Context) error {
	parts := []string{
		"SELECT MAX(lastaccess) AS t FROM {user}",
		"SELECT MAX(timemodified) FROM {user}",
		"SELECT MAX(timemodified) FROM {user_enrolments}",
		"SELECT MAX(timemodified) FROM {course}",
		"SELECT MAX(timemodified) FROM {role_assignments}",
		"SELECT MAX(timemodified) FROM {groups}",
		"SELECT MAX(timeadded) FROM {groups_members}",
	}
	var table string
	err := r.q.each(ctx, "which optional tables exist", "SELECT table_name FROM information_schema.tables WHERE table_schema = "+
		r.q.d.schema+" AND table_name IN (?, ?)", []any{r.q.prefix + "logstore_standard_log", r.q.prefix + "task_scheduled"},
		[]any{&table}, func() error {
			switch strings.TrimPrefix(table, r.q.prefix) {
			case "logstore_standard_log":
				parts = append(parts, "SELECT MAX(timecreated) FROM {logstore_standard_log}")
			case "task_scheduled":
				parts = append(parts, "SELECT MAX(lastruntime) FROM {task_scheduled}")
			}
			return nil
		})
	if err != nil {
		return err
	}
	var newest sql.NullInt64
	rows, err := r.q.query(ctx, "the newest activity", "SELECT MAX(t) FROM ("+strings.Join(parts, " UNION ALL ")+") x")
	if err != nil {
		return err
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&newest); err != nil {
			return fmt.Errorf("reading the newest activity: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading the newest activity: %w", err)
	}
	maxLag := r.x.site.Database.MaxLag
	at := time.Unix(newest.Int64, 0)
	age := time.Unix(r.now, 0).Sub(at)
	if !newest.Valid || age > maxLag {
		return &LagError{Newest: at, Age: age, MaxLag: maxLag}
	}
	return nil
}

// siteInfo lands what the database knows of core_webservice_get_site_info:
// no web-service user or function list, which only a token has.
func (r *dbRead) siteInfo(ctx context.Context) error {
	o := r.x.open(ctx, entSiteInfo)
	if o == nil {
		return nil
	}
	r.x.expect(entSiteInfo, 1)
	var j jsonObj
	j.reset()
	j.str("sitename", r.cfg["sitename"])
	j.str("siteurl", r.siteURL)
	j.str("release", r.cfg["release"])
	j.str("version", r.cfg["version"])
	j.num("siteid", r.siteID)
	j.str("mim_read", "database")
	if err := o.write(ctx, "site", "", j.close()); err != nil {
		return err
	}
	o.complete("")
	o.commit(ctx)
	r.x.done(entSiteInfo, 1)
	return nil
}

// categories reads core_course_get_categories as an administrator sees it.
func (r *dbRead) categories(ctx context.Context) error {
	o := r.x.open(ctx, entCategories)
	var (
		id, format, parent, sortorder, count, visible, visibleOld, modified, depth int64
		name, path                                                                 string
		idnumber, description, theme                                               sql.NullString
		j                                                                          jsonObj
	)
	err := r.q.each(ctx, "categories", `SELECT id, name, idnumber, description, descriptionformat, parent, sortorder,
			coursecount, visible, visibleold, timemodified, depth, path, theme
		FROM {course_categories} ORDER BY sortorder, id`, nil,
		[]any{&id, &name, &idnumber, &description, &format, &parent, &sortorder, &count, &visible, &visibleOld, &modified,
			&depth, &path, &theme},
		func() error {
			j.reset()
			j.num("id", id)
			j.str("name", name)
			j.str("idnumber", idnumber.String)
			j.str("description", description.String)
			j.num("descriptionformat", format)
			j.num("parent", parent)
			j.num("sortorder", sortorder)
			j.num("coursecount", count)
			j.num("visible", visible)
			j.num("visibleold", visibleOld)
			j.num("timemodified", modified)
			j.num("depth", depth)
			j.str("path", path)
			j.str("theme", theme.String)
			r.cats = append(r.cats, category{id: id, idnumber: idnumber.String, path: path})
			return o.write(ctx, strconv.FormatInt(id, 10), "", j.close())
		})
	if err != nil {
		return err
	}
	r.snapshotLanded(ctx, o, entCategories, len(r.cats))
	return nil
}

// snapshotLanded declares an entity read whole (scope "") complete, commits
// it, and counts its n records.
func (r *dbRead) snapshotLanded(ctx context.Context, o *entityOut, entity string, n int) {
	r.x.expect(entity, n)
	o.complete("")
	o.commit(ctx)
	r.x.done(entity, n)
}

// formatOption is one of a course's format options (sectionid 0).
type formatOption struct{ name, value string }

// readCourses reads core_course_get_courses as an administrator sees it,
// the front page included, and keeps the course list.
func (r *dbRead) readCourses(ctx context.Context) error {
	o := r.x.open(ctx, entCourses)
	sections := map[int64]int64{}
	var cid, n int64
	err := r.q.each(ctx, "course sections", "SELECT course, MAX(section) FROM {course_sections} GROUP BY course", nil,
		[]any{&cid, &n}, func() error { sections[cid] = n; return nil })
	if err != nil {
		return err
	}
	options := map[int64][]formatOption{}
	var name string
	var value sql.NullString
	err = r.q.each(ctx, "course format options", `SELECT o.courseid, o.name, o.value FROM {course_format_options} o
		JOIN {course} c ON c.id = o.courseid AND c.format = o.format WHERE o.sectionid = 0 ORDER BY o.courseid, o.id`, nil,
		[]any{&cid, &name, &value}, func() error {
			options[cid] = append(options[cid], formatOption{name, value.String})
			return nil
		})
	if err != nil {
		return err
	}
	var (
		id, category, sortorder, summaryFormat, showGrades, newsItems, start, end, maxBytes, showReports, visible int64
		groupMode, groupModeForce, defaultGrouping, created, modified, completion, notify, activityDates          int64
		completionConditions                                                                                      sql.NullInt64
		shortname, fullname, idnumber, format, lang, theme                                                        string
		summary                                                                                                   sql.NullString
		j, opt                                                                                                    jsonObj
		list                                                                                                      jsonList
	)
	shortnames := r.cfg["courselistshortnames"] == "1"
	err = r.q.each(ctx, "courses", `SELECT id, shortname, category, sortorder, fullname, idnumber, summary, summaryformat,
			format, showgrades, newsitems, startdate, enddate, maxbytes, showreports, visible, groupmode, groupmodeforce,
			defaultgroupingid, timecreated, timemodified, enablecompletion, completionnotify, lang, theme,
			showactivitydates, showcompletionconditions
		FROM {course} ORDER BY id`, nil,
		[]any{&id, &shortname, &category, &sortorder, &fullname, &idnumber, &summary, &summaryFormat, &format, &showGrades,
			&newsItems, &start, &end, &maxBytes, &showReports, &visible, &groupMode, &groupModeForce, &defaultGrouping,
			&created, &modified, &completion, &notify, &lang, &theme, &activityDates, &completionConditions},
		func() error {
			displayName := fullname
			if shortnames {
				displayName = shortname + " " + fullname
			}
			opts := options[id]
			j.reset()
			j.num("id", id)
			j.str("shortname", shortname)
			j.num("categoryid", category)
			j.num("categorysortorder", sortorder)
			j.str("fullname", fullname)
			j.str("displayname", displayName)
			j.str("idnumber", idnumber)
			j.str("summary", summary.String)
			j.num("summaryformat", summaryFormat)
			j.str("format", format)
			j.num("showgrades", showGrades)
			j.num("newsitems", newsItems)
			j.num("startdate", start)
			j.num("enddate", end)
			j.num("numsections", sections[id])
			j.num("maxbytes", maxBytes)
			j.num("showreports", showReports)
			j.num("visible", visible)
			for _, fo := range opts {
				if fo.name == "hiddensections" {
					formatValue(&j, "hiddensections", fo.value)
				}
			}
			j.num("groupmode", groupMode)
			j.num("groupmodeforce", groupModeForce)
			j.num("defaultgroupingid", defaultGrouping)
			j.num("timecreated", created)
			j.num("timemodified", modified)
			j.num("enablecompletion", completion)
			j.num("completionnotify", notify)
			j.str("lang", lang)
			j.str("forcetheme", theme)
			list.reset()
			for _, fo := range opts {
				opt.reset()
				opt.str("name", fo.name)
				formatValue(&opt, "value", fo.value)
				list.add(opt.close())
			}
			j.raw("courseformatoptions", list.close())
			j.boolean("showactivitydates", activityDates != 0)
			j.boolean("showcompletionconditions", completionConditions.Int64 != 0)
			r.courses = append(r.courses, course{id: id, category: category, site: format == "site" || id == r.siteID})
			return o.write(ctx, strconv.FormatInt(id, 10), "", j.close())
		})
	if err != nil {
		return err
	}
	r.snapshotLanded(ctx, o, entCourses, len(r.courses))
	return nil
}

// formatValue writes a course format option's value as the web service
// sends it: the options Moodle's formats keep are integers (hiddensections,
// coursedisplay), sent as numbers; anything else as stored.
func formatValue(j *jsonObj, key, value string) {
	if n, err := strconv.ParseInt(value, 10, 64); err == nil && strconv.FormatInt(n, 10) == value {
		j.num(key, n)
		return
	}
	j.str(key, value)
}

// profileFieldDef is a custom profile field, in Moodle's display order.
type profileFieldDef struct {
	id                        int64
	shortname, name, datatype string
	dflt                      string
}

// nameFields are the fields fullname() may use.
type nameFields struct {
	first, last                                  string
	firstPhonetic, lastPhonetic, middle, altName sql.NullString
}

// fullName is Moodle's fullname(): $CFG->fullnamedisplay, whose default
// ("language") is the first name, a space and the last name in English.
func (r *dbRead) fullName(n *nameFields) string {
	tpl := r.cfg["fullnamedisplay"]
	if tpl == "" || tpl == "language" {
		return n.first + " " + n.last
	}
	return strings.TrimSpace(strings.NewReplacer("firstnamephonetic", n.firstPhonetic.String,
		"lastnamephonetic", n.lastPhonetic.String, "middlename", n.middle.String, "alternatename", n.altName.String,
		"firstname", n.first, "lastname", n.last).Replace(tpl))
}

// users reads core_user_get_users as an administrator sees it (every
// account not deleted, narrowed by the configured criteria as Moodle
// narrows them), and harvests the profile fields of their customfields.
func (r *dbRead) users(ctx context.Context) error {
	users, fields := r.x.open(ctx, entUsers), r.x.open(ctx, entProfileFields)
	var defs []profileFieldDef
	var d profileFieldDef
	var dflt sql.NullString
	err := r.q.each(ctx, "profile fields", `SELECT f.id, f.shortname, f.name, f.datatype, f.defaultdata
		FROM {user_info_field} f LEFT JOIN {user_info_category} c ON c.id = f.categoryid
		ORDER BY c.sortorder, f.sortorder, f.id`, nil,
		[]any{&d.id, &d.shortname, &d.name, &d.datatype, &dflt}, func() error {
			d.dflt = dflt.String
			defs = append(defs, d)
			return nil
		})
	if err != nil {
		return err
	}
	themeURL := r.siteURL + "/theme/image.php/" + r.theme() + "/core/" + r.cfg["themerev"] + "/u/"
	harvested := map[string]harvestedField{}
	var (
		row, u  dbUser
		fieldID sql.NullInt64
		data    sql.NullString
		values  = map[int64]string{}
		have    bool
		j, cf   jsonObj
		list    jsonList
	)
	// emit lands u, whose profile data are values.
	emit := func() error {
		if !r.userMatches(&u) {
			return nil
		}
		j.reset()
		j.num("id", u.id)
		j.str("username", u.username)
		j.str("firstname", u.first)
		j.str("lastname", u.last)
		j.str("fullname", r.fullName(&u.nameFields))
		j.str("email", u.email)
		j.str("department", u.department)
		if u.institution != "" {
			j.str("institution", u.institution)
		}
		if u.idnumber != "" {
			j.str("idnumber", u.idnumber)
		}
		j.num("firstaccess", u.firstAccess)
		j.num("lastaccess", u.lastAccess)
		j.str("auth", u.auth)
		j.boolean("suspended", u.suspended != 0)
		j.boolean("confirmed", u.confirmed != 0)
		j.str("lang", u.lang)
		j.str("theme", u.theme)
		j.str("timezone", u.timezone)
		j.num("mailformat", u.mailFormat)
		j.num("trackforums", u.trackForums)
		if u.description.String != "" {
			j.str("description", u.description.String)
			j.num("descriptionformat", u.descriptionFormat)
		}
		if u.city != "" {
			j.str("city", u.city)
		}
		if u.country != "" {
			j.str("country", u.country)
		}
		if u.picture != 0 && u.context.Valid {
			icon := r.siteURL + "/pluginfile.php/" + strconv.FormatInt(u.context.Int64, 10) + "/user/icon/" + r.theme() + "/"
			rev := "?rev=" + strconv.FormatInt(u.picture, 10)
			j.str("profileimageurlsmall", icon+"f2"+rev)
			j.str("profileimageurl", icon+"f1"+rev)
		} else {
			j.str("profileimageurlsmall", themeURL+"f2")
			j.str("profileimageurl", themeURL+"f1")
		}
		list.reset()
		for _, def := range defs {
			v, ok := values[def.id]
			if !ok {
				v = def.dflt // a user with no data row shows the field's default
			}
			if v == "" {
				continue
			}
			cf.reset()
			cf.str("type", def.datatype)
			cf.str("value", v)
			cf.str("displayvalue", displayValue(def.datatype, v))
			cf.str("name", def.name)
			cf.str("shortname", def.shortname)
			list.add(cf.close())
			if err := harvest(harvested, u.id, profileField{ShortName: def.shortname, Name: def.name, Type: def.datatype}); err != nil {
				return err
			}
		}
		if list.n > 0 {
			j.raw("customfields", list.close())
		}
		r.x.done(entUsers, 1)
		return users.write(ctx, strconv.FormatInt(u.id, 10), "", j.close())
	}
	// One row per user and profile value, in user order: a user is complete
	// when the next one starts.
	err = r.q.each(ctx, "users", `SELECT u.id, u.username, u.firstname, u.lastname, u.email, u.department, u.institution,
			u.idnumber, u.firstaccess, u.lastaccess, u.auth, u.suspended, u.confirmed, u.lang, u.theme, u.timezone,
			u.mailformat, u.trackforums, u.description, u.descriptionformat, u.city, u.country, u.picture,
			u.firstnamephonetic, u.lastnamephonetic, u.middlename, u.alternatename, ctx.id, d.fieldid, d.data
		FROM {user} u
		LEFT JOIN {context} ctx ON ctx.contextlevel = 30 AND ctx.instanceid = u.id
		LEFT JOIN {user_info_data} d ON d.userid = u.id
		WHERE u.deleted = 0
		ORDER BY u.id`, nil, append(row.dest(), &fieldID, &data), func() error {
		if !have || row.id != u.id {
			if have {
				if err := emit(); err != nil {
					return err
				}
			}
			u, have = row, true
			clear(values)
		}
		if fieldID.Valid {
			values[fieldID.Int64] = data.String
		}
		return nil
	})
	if err != nil {
		return err
	}
	if have {
		if err := emit(); err != nil {
			return err
		}
	}
	users.complete("")
	users.commit(ctx)
	fields.complete("")
	return r.x.landProfileFields(ctx, fields, harvested)
}

func (r *dbRead) theme() string {
	if t := r.cfg["theme"]; t != "" {
		return t
	}
	return "boost"
}

// displayValue is a profile field's displayvalue as the simulator, our
// reference for the web services, shows it: a checkbox as Yes or No,
// anything else as stored.
func displayValue(datatype, v string) string {
	if datatype == "checkbox" {
		if v == "1" {
			return "Yes"
		}
		return "No"
	}
	return v
}

// dbUser is the part of a user row a read lands.
type dbUser struct {
	id                                                        int64
	username, email, department, institution, idnumber, auth  string
	lang, theme, timezone, city, country                      string
	firstAccess, lastAccess, suspended, confirmed, mailFormat int64
	trackForums, descriptionFormat, picture                   int64
	description                                               sql.NullString
	context                                                   sql.NullInt64
	nameFields
}

func (u *dbUser) dest() []any {
	return []any{&u.id, &u.username, &u.first, &u.last, &u.email, &u.department, &u.institution, &u.idnumber,
		&u.firstAccess, &u.lastAccess, &u.auth, &u.suspended, &u.confirmed, &u.lang, &u.theme, &u.timezone,
		&u.mailFormat, &u.trackForums, &u.description, &u.descriptionFormat, &u.city, &u.country, &u.picture,
		&u.firstPhonetic, &u.lastPhonetic, &u.middle, &u.altName, &u.context}
}

// userMatches applies the configured user_criteria as core_user_get_users
// does: id, idnumber, username and auth match exactly, email, firstname and
// lastname case-insensitively with SQL LIKE wildcards; then a user whose
// searched field comes back empty is left out (Moodle drops them, taking
// it for a field the caller may not see).
func (r *dbRead) userMatches(u *dbUser) bool {
	for _, c := range r.x.site.UserCriteria {
		var v string
		exact := true
		switch c.Key {
		case "id":
			v = strconv.FormatInt(u.id, 10)
		case "idnumber":
			v = u.idnumber
		case "username":
			v = u.username
		case "auth":
			v = u.auth
		case "email":
			v, exact = u.email, false
		case "firstname":
			v, exact = u.first, false
		case "lastname":
			v, exact = u.last, false
		}
		if exact && v != c.Value || !exact && !sqlLike(v, c.Value) || v == "" || v == "0" {
			return false
		}
	}
	return true
}

// sqlLike is a case-insensitive SQL LIKE with % and _ wildcards.
func sqlLike(s, pattern string) bool {
	s, pattern = strings.ToLower(s), strings.ToLower(pattern)
	var match func(s, p []rune) bool
	match = func(s, p []rune) bool {
		for len(p) > 0 {
			switch p[0] {
			case '%':
				for i := 0; i <= len(s); i++ {
					if match(s[i:], p[1:]) {
						return true
					}
				}
				return false
			case '_':
				if len(s) == 0 {
					return false
				}
			default:
				if len(s) == 0 || s[0] != p[0] {
					return false
				}
			}
			s, p = s[1:], p[1:]
		}
		return len(s) == 0
	}
	return match([]rune(s), []rune(pattern))
}
