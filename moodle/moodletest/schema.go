package moodletest

import (
	"fmt"
	"strconv"
	"strings"
)

// Dialect is the SQL of the database a Moodle site runs on.
type Dialect string

// The databases Moodle runs on that MIM reads.
const (
	Postgres Dialect = "postgres"
	MySQL    Dialect = "mysql" // MySQL and MariaDB
)

// moodleTables are the tables of Moodle 4.5 that an integration reads, as
// lib/db/install.xml defines them (column order, types, defaults and
// nullability as `pg_dump -s` shows them on a real 4.5.0 site; see
// docs/moodle-schema.md). Types: I bigint, S smallint, C<n> varchar(n),
// X text, N numeric(10,5); "!" is NOT NULL, "=v" the default. Columns no
// integration reads are kept, so the rows written look like Moodle's.
var moodleTables = []tableDef{
	{"config", "id I!, name C255!='', value X!", []string{"u name"}},
	{"context", "id I!, contextlevel I!=0, instanceid I!=0, path C255, depth S!=0, locked S!=0",
		[]string{"u contextlevel,instanceid", "instanceid", "path"}},
	{"course", "id I!, category I!=0, sortorder I!=0, fullname C254!='', shortname C255!='', idnumber C100!='', " +
		"summary X, summaryformat S!=0, format C21!='topics', showgrades S!=1, newsitems I!=1, startdate I!=0, " +
		"enddate I!=0, relativedatesmode S!=0, marker I!=0, maxbytes I!=0, legacyfiles S!=0, showreports S!=0, " +
		"visible S!=1, visibleold S!=1, downloadcontent S, groupmode S!=0, groupmodeforce S!=0, " +
		"defaultgroupingid I!=0, lang C30!='', calendartype C30!='', theme C50!='', timecreated I!=0, " +
		"timemodified I!=0, requested S!=0, enablecompletion S!=0, completionnotify S!=0, cacherev I!=0, " +
		"originalcourseid I, showactivitydates S!=0, showcompletionconditions S, pdfexportfont C50",
		[]string{"category", "idnumber", "shortname", "sortorder"}},
	{"course_categories", "id I!, name C255!='', idnumber C100, description X, descriptionformat S!=0, " +
		"parent I!=0, sortorder I!=0, coursecount I!=0, visible S!=1, visibleold S!=1, timemodified I!=0, " +
		"depth I!=0, path C255!='', theme C50", []string{"parent"}},
	{"course_sections", "id I!, course I!=0, section I!=0, name C255, summary X, summaryformat S!=0, sequence X, " +
		"visible S!=1, availability X, component C100, itemid I, timemodified I!=0", []string{"u course,section"}},
	{"course_format_options", "id I!, courseid I!, format C21!='', sectionid I!=0, name C100!='', value X",
		[]string{"courseid", "u courseid,format,sectionid,name"}},
	{"course_completions", "id I!, userid I!=0, course I!=0, timeenrolled I!=0, timestarted I!=0, " +
		"timecompleted I, reaggregate I!=0", []string{"course", "u userid,course"}},
	{"course_completion_criteria", "id I!, course I!=0, criteriatype I!=0, module C100, moduleinstance I, " +
		"courseinstance I, enrolperiod I, timeend I, gradepass N, role I", []string{"course"}},
	{"course_modules", "id I!, course I!=0, module I!=0, instance I!=0, section I!=0, idnumber C100, " +
		"added I!=0, score S!=0, indent I!=0, visible S!=1, visibleoncoursepage S!=1, visibleold S!=1, " +
		"groupmode S!=0, groupingid I!=0, completion S!=0, completiongradeitemnumber I, completionview S!=0, " +
		"completionexpected I!=0, completionpassgrade S!=0, showdescription S!=0, availability X, " +
		"deletioninprogress S!=0, downloadcontent S!=1, lang C30", []string{"course"}},
	{"course_modules_completion", "id I!, coursemoduleid I!, userid I!, completionstate S!, overrideby I, " +
		"timemodified I!", []string{"coursemoduleid", "u userid,coursemoduleid"}},
	{"enrol", "id I!, enrol C20!='', status I!=0, courseid I!, sortorder I!=0, name C255, enrolperiod I=0, " +
		"enrolstartdate I=0, enrolenddate I=0, expirynotify S=0, expirythreshold I=0, notifyall S=0, " +
		"password C50, cost C20, currency C3, roleid I=0, customint1 I, customint2 I, customint3 I, " +
		"customint4 I, customint5 I, customint6 I, customint7 I, customint8 I, customchar1 C255, " +
		"customchar2 C255, customchar3 C1333, customdec1 N, customdec2 N, customtext1 X, customtext2 X, " +
		"customtext3 X, customtext4 X, timecreated I!=0, timemodified I!=0", []string{"courseid", "enrol", "roleid"}},
	{"favourite", "id I!, component C100!, itemtype C100!, itemid I!, contextid I!, userid I!, ordering I, " +
		"timecreated I!, timemodified I", []string{"u component,itemtype,itemid,contextid,userid", "userid"}},
	{"grade_items", "id I!, courseid I, categoryid I, itemname C255, itemtype C30!='', itemmodule C30, " +
		"iteminstance I, itemnumber I, iteminfo X, idnumber C255, calculation X, gradetype S!=1, " +
		"grademax N!=100, grademin N!=0, scaleid I, outcomeid I, gradepass N!=0, multfactor N!=1.0, " +
		"plusfactor N!=0, aggregationcoef N!=0, aggregationcoef2 N!=0, sortorder I!=0, display I!=0, " +
		"decimals S, hidden I!=0, locked I!=0, locktime I!=0, needsupdate I!=0, weightoverride S!=0, " +
		"timecreated I, timemodified I", []string{"courseid", "categoryid", "idnumber,courseid"}},
	{"grade_grades", "id I!, itemid I!, userid I!, rawgrade N, rawgrademax N!=100, rawgrademin N!=0, " +
		"rawscaleid I, usermodified I, finalgrade N, hidden I!=0, locked I!=0, locktime I!=0, exported I!=0, " +
		"overridden I!=0, excluded I!=0, feedback X, feedbackformat I!=0, information X, informationformat I!=0, " +
		"timecreated I, timemodified I, aggregationstatus C10!='unknown', aggregationweight N",
		[]string{"itemid", "userid", "u userid,itemid"}},
	{"groupings", "id I!, courseid I!=0, name C255!='', idnumber C100!='', description X, descriptionformat S!=0, " +
		"configdata X, timecreated I!=0, timemodified I!=0", []string{"courseid", "idnumber"}},
	{"groupings_groups", "id I!, groupingid I!=0, groupid I!=0, timeadded I!=0", []string{"groupingid", "groupid"}},
	{"groups", "id I!, courseid I!, idnumber C100!='', name C254!='', description X, descriptionformat S!=0, " +
		"enrolmentkey C50, picture I!=0, visibility S!=0, participation S!=1, timecreated I!=0, timemodified I!=0",
		[]string{"courseid", "idnumber"}},
	{"groups_members", "id I!, groupid I!=0, userid I!=0, timeadded I!=0, component C100!='', itemid I!=0",
		[]string{"groupid", "userid", "u userid,groupid"}},
	{"logstore_standard_log", "id I!, eventname C255!='', component C100!='', action C100!='', target C100!='', " +
		"objecttable C50, objectid I, crud C1!='', edulevel S!, contextid I!, contextlevel I!, contextinstanceid I!, " +
		"userid I!, courseid I, relateduserid I, anonymous S!=0, other X, timecreated I!, origin C10, ip C45, " +
		"realuserid I", []string{"timecreated", "courseid,anonymous", "userid,contextlevel,contextinstanceid,crud,edulevel,timecreated"}},
	{"role", "id I!, name C255!='', shortname C100!='', description X!, sortorder I!=0, archetype C30!=''",
		[]string{"u shortname", "u sortorder"}},
	{"role_assignments", "id I!, roleid I!=0, contextid I!=0, userid I!=0, timemodified I!=0, modifierid I!=0, " +
		"component C100!='', itemid I!=0, sortorder I!=0",
		[]string{"contextid", "roleid", "userid", "roleid,contextid", "userid,contextid,roleid", "component,itemid,userid"}},
	{"task_scheduled", "id I!, component C255!='', classname C255!='', lastruntime I, nextruntime I, " +
		"blocking S!=0, minute C200!='', hour C70!='', day C90!='', month C30!='', dayofweek C25!='', " +
		"faildelay I, customised S!=0, disabled S!=0, timestarted I, hostname C255, pid I", []string{"u classname"}},
	{"user", "id I!, auth C20!='manual', confirmed S!=0, policyagreed S!=0, deleted S!=0, suspended S!=0, " +
		"mnethostid I!=0, username C100!='', password C255!='', idnumber C255!='', firstname C100!='', " +
		"lastname C100!='', email C100!='', emailstop S!=0, phone1 C20!='', phone2 C20!='', " +
		"institution C255!='', department C255!='', address C255!='', city C120!='', country C2!='', " +
		"lang C30!='en', calendartype C30!='gregorian', theme C50!='', timezone C100!='99', firstaccess I!=0, " +
		"lastaccess I!=0, lastlogin I!=0, currentlogin I!=0, lastip C45!='', secret C15!='', picture I!=0, " +
		"description X, descriptionformat S!=1, mailformat S!=1, maildigest S!=0, maildisplay S!=2, " +
		"autosubscribe S!=1, trackforums S!=0, timecreated I!=0, timemodified I!=0, trustbitmask I!=0, " +
		"imagealt C255, lastnamephonetic C255, firstnamephonetic C255, middlename C255, alternatename C255, " +
		"moodlenetprofile C255", []string{"u mnethostid,username", "deleted", "idnumber", "lastaccess", "email", "auth"}},
	{"user_enrolments", "id I!, status I!=0, enrolid I!, userid I!, timestart I!=0, timeend I!=2147483647, " +
		"modifierid I!=0, timecreated I!=0, timemodified I!=0", []string{"enrolid", "userid", "u enrolid,userid"}},
	{"user_info_category", "id I!, name C255!='', sortorder I!=0", nil},
	{"user_info_data", "id I!, userid I!=0, fieldid I!=0, data X!, dataformat S!=0", []string{"u userid,fieldid"}},
	{"user_info_field", "id I!, shortname C255!='shortname', name X!, datatype C255!='', description X, " +
		"descriptionformat S!=0, categoryid I!=0, sortorder I!=0, required S!=0, locked S!=0, visible S!=0, " +
		"forceunique S!=0, signup S!=0, defaultdata X, defaultdataformat S!=0, param1 X, param2 X, param3 X, " +
		"param4 X, param5 X", nil},
	{"user_lastaccess", "id I!, userid I!=0, courseid I!=0, timeaccess I!=0", []string{"u userid,courseid"}},
	{"user_preferences", "id I!, userid I!=0, name C255!='', value C1333!=''", []string{"u userid,name"}},
}

// tableDef is one Moodle table: its name without the prefix, its columns
// in the DSL above, and its indexes ("u " marks a unique one).
type tableDef struct {
	name    string
	columns string
	indexes []string
}

type columnDef struct {
	name, typ string
	size      int
	notNull   bool
	dflt      string // SQL literal; "" = no default
}

func (t tableDef) cols() []columnDef {
	var out []columnDef
	for _, spec := range strings.Split(t.columns, ", ") {
		name, rest, _ := strings.Cut(spec, " ")
		c := columnDef{name: name}
		if d, after, ok := strings.Cut(rest, "="); ok {
			rest, c.dflt = d, after
		}
		if strings.HasSuffix(rest, "!") {
			rest, c.notNull = strings.TrimSuffix(rest, "!"), true
		}
		c.typ = rest[:1]
		if len(rest) > 1 {
			c.size, _ = strconv.Atoi(rest[1:])
		}
		out = append(out, c)
	}
	return out
}

// ddl returns the statements creating t in dialect d, as Moodle's
// installer would (InnoDB with utf8mb4_unicode_ci on MySQL); binary makes
// text sort byte by byte (utf8mb4_bin, or "C" on PostgreSQL).
func (t tableDef) ddl(d Dialect, prefix string, binary bool) []string {
	name := prefix + t.name
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE %s (\n", name)
	for _, c := range t.cols() {
		fmt.Fprintf(&b, "    %s %s", c.name, c.sqlType(d))
		if binary && d == Postgres && (c.typ == "C" || c.typ == "X") {
			b.WriteString(` COLLATE "C"`)
		}
		if c.notNull {
			b.WriteString(" NOT NULL")
		}
		if c.dflt != "" {
			b.WriteString(" DEFAULT " + c.dflt)
		}
		b.WriteString(",\n")
	}
	fmt.Fprintf(&b, "    CONSTRAINT %s_id_pk PRIMARY KEY (id)\n)", name)
	if d == MySQL {
		collation := "utf8mb4_unicode_ci"
		if binary {
			collation = "utf8mb4_bin"
		}
		b.WriteString(" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=" + collation + " ROW_FORMAT=Dynamic")
	}
	out := []string{b.String()}
	for i, ix := range t.indexes {
		unique := ""
		if cols, ok := strings.CutPrefix(ix, "u "); ok {
			unique, ix = "UNIQUE ", cols
		}
		out = append(out, fmt.Sprintf("CREATE %sINDEX %s_ix%d ON %s (%s)", unique, name, i, name, ix))
	}
	return out
}

func (c columnDef) sqlType(d Dialect) string {
	switch c.typ {
	case "I":
		return "BIGINT"
	case "S":
		return "SMALLINT"
	case "C":
		return fmt.Sprintf("VARCHAR(%d)", c.size)
	case "N":
		if d == MySQL {
			return "DECIMAL(10,5)"
		}
		return "NUMERIC(10,5)"
	case "X":
		if d == MySQL {
			return "LONGTEXT"
		}
		return "TEXT"
	}
	panic("moodletest: column " + c.name + " has unknown type " + c.typ)
}

// SchemaDDL returns the statements that create the Moodle tables MIM reads,
// with prefix (Moodle's $CFG->prefix, e.g. "mdl_"), in dialect d. With
// binary, text compares and sorts byte by byte.
func SchemaDDL(d Dialect, prefix string, binary bool) []string {
	var out []string
	for _, t := range moodleTables {
		out = append(out, t.ddl(d, prefix, binary)...)
	}
	return out
}
