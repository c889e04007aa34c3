package mapping

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"
)

// CSVHeader is the header of a mapping CSV file, in the order `mim mappings
// list --format csv` writes it. Only course_idnumber, sis_kind and sis_key
// are required; instance may come from --instance instead.
var CSVHeader = []string{"instance", "course_idnumber", "sis_kind", "sis_key", "academic_year", "section", "course_year",
	"min_reg_status", "roles", "group_sync", "active"}

// Row is one mapping read from a file, with where it came from.
type Row struct {
	Mapping
	// ActiveSet says the file gave active explicitly; otherwise a re-import
	// keeps the mapping's current state (never undoing a deactivation).
	ActiveSet bool
	// Where names the record: "line 12", or `entry "COUN6552..." course 2`.
	Where string
	// Shortname and CourseID identify the Moodle course when the file
	// does not give its idnumber (the JSON shape); Resolve fills it in.
	Shortname string
	CourseID  int64
}

// Defaults fill what a file leaves out.
type Defaults struct {
	Instance     string // --instance
	AcademicYear string // --year
	Kind         string // the JSON shape's kind (default section)
	Origin       string // import:<file name>
}

// Problem is one thing wrong with one record of a file.
type Problem struct {
	Where   string // line 12, entry "X"
	Field   string
	Message string
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.Where + ": " + p.Message
	}
	return p.Where + ": " + p.Field + ": " + p.Message
}

// FileError lists every problem of a file; nothing was imported.
type FileError struct {
	File     string
	Problems []Problem
}

func (e *FileError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s has %d problem", e.File, len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteString("s")
	}
	b.WriteString("; nothing was imported:")
	for i, p := range e.Problems {
		if i == 50 {
			fmt.Fprintf(&b, "\n  ... and %d more", len(e.Problems)-50)
			break
		}
		b.WriteString("\n  - ")
		b.WriteString(p.String())
	}
	return b.String()
}

// ExitCode makes a bad file a usage error.
func (e *FileError) ExitCode() int { return 2 }

// ParseFile reads a mapping file: JSON when it starts with '{', else CSV.
func ParseFile(data []byte, d Defaults, k Knowledge) ([]Row, []Problem) {
	if t := bytes.TrimLeftFunc(data, unicode.IsSpace); len(t) > 0 && t[0] == '{' {
		return ParseJSON(data, d, k)
	}
	return ParseCSV(bytes.NewReader(data), d, k)
}

// ParseCSV reads a CSV file with a header row (CSVHeader's columns, in any
// order; unknown columns are problems). roles are separated by ';' or
// spaces; booleans are true/false, yes/no, 1/0.
func ParseCSV(r io.Reader, d Defaults, k Knowledge) ([]Row, []Problem) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, []Problem{{Where: "line 1", Message: "the file is empty; it needs a header: " + strings.Join(CSVHeader, ",")}}
	}
	if err != nil {
		return nil, []Problem{{Where: "line 1", Message: err.Error()}}
	}
	var probs []Problem
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		switch {
		case !slices.Contains(CSVHeader, h):
			probs = append(probs, Problem{Where: "line 1", Field: h, Message: "unknown column (known: " + strings.Join(CSVHeader, ", ") + ")"})
		case col[h] != 0:
			probs = append(probs, Problem{Where: "line 1", Field: h, Message: "column given twice"})
		default:
			col[h] = i + 1
		}
	}
	for _, req := range []string{"course_idnumber", "sis_kind", "sis_key"} {
		if col[req] == 0 {
			probs = append(probs, Problem{Where: "line 1", Field: req, Message: "required column missing"})
		}
	}
	if col["instance"] == 0 && d.Instance == "" {
		probs = append(probs, Problem{Where: "line 1", Field: "instance", Message: "no instance column: add one or pass --instance SITE"})
	}
	if len(probs) > 0 {
		return nil, probs
	}
	var rows []Row
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		where := fmt.Sprintf("line %d", line)
		if err != nil {
			probs = append(probs, Problem{Where: where, Message: err.Error()})
			if _, ok := err.(*csv.ParseError); ok && !errors.Is(err, csv.ErrFieldCount) {
				break
			}
			continue
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) != len(header) {
			probs = append(probs, Problem{Where: where, Message: fmt.Sprintf("%d fields, the header has %d", len(rec), len(header))})
			continue
		}
		get := func(name string) (string, bool) {
			if i := col[name]; i > 0 {
				return strings.TrimSpace(rec[i-1]), true
			}
			return "", false
		}
		f := fields{where: where}
		for _, h := range CSVHeader {
			if v, ok := get(h); ok {
				f.set(h, v)
			}
		}
		row, ps := f.row(d, k)
		probs = append(probs, ps...)
		rows = append(rows, row)
	}
	if len(rows) == 0 && len(probs) == 0 {
		probs = append(probs, Problem{Where: "line 2", Message: "no mappings: the file has only a header"})
	}
	return rows, probs
}

// fields holds one record's raw values by CSV column name.
type fields struct {
	where string
	vals  map[string]string
}

func (f *fields) set(k, v string) {
	if f.vals == nil {
		f.vals = map[string]string{}
	}
	f.vals[k] = v
}

// row validates and normalizes one record.
func (f fields) row(d Defaults, k Knowledge) (Row, []Problem) {
	var probs []Problem
	bad := func(field, format string, args ...any) {
		probs = append(probs, Problem{Where: f.where, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	r := Row{Where: f.where}
	m := &r.Mapping
	m.Instance = f.vals["instance"]
	if m.Instance == "" {
		m.Instance = d.Instance
	}
	switch {
	case m.Instance == "":
		bad("instance", "required: the Moodle site the course is on")
	case len(k.Sites) > 0 && !slices.Contains(k.Sites, m.Instance):
		bad("instance", "%q is not a configured Moodle site (%s)", m.Instance, strings.Join(k.Sites, ", "))
	}
	m.CourseIDNumber = f.vals["course_idnumber"]
	if m.CourseIDNumber == "" {
		if f.vals["shortname"] == "" {
			bad("course_idnumber", "required: the Moodle course's idnumber")
		}
	} else if msg := checkText(m.CourseIDNumber, 100); msg != "" {
		bad("course_idnumber", "%s", msg)
	}
	m.SISKind = strings.ToLower(f.vals["sis_kind"])
	if !slices.Contains(SISKinds, m.SISKind) {
		bad("sis_kind", "%q is not one of %s", f.vals["sis_kind"], strings.Join(SISKinds, ", "))
	}
	m.SISKey = f.vals["sis_key"]
	if m.SISKey == "" {
		bad("sis_key", "required: the SIS key (occurrence BDO id or MOD-MAV-PSL-AYR key, programme code, ...)")
	} else if msg := checkText(m.SISKey, 100); msg != "" {
		bad("sis_key", "%s", msg)
	}
	year := f.vals["academic_year"]
	if year == "" {
		year = d.AcademicYear
	}
	if year != "" {
		if y, ok := StartYear(year); ok {
			m.AcademicYear = strconv.Itoa(y)
		} else {
			bad("academic_year", "%q is not an academic year (2025, 2025/6, 2025/26 or 25/26)", year)
		}
	}
	m.Section = f.vals["section"]
	if m.Section != "" && m.SISKind != "section" {
		bad("section", "applies only to sis_kind section")
	} else if msg := checkText(m.Section, 30); msg != "" {
		bad("section", "%s", msg)
	}
	m.CourseYear = strings.ToUpper(f.vals["course_year"])
	if m.CourseYear != "" {
		switch {
		case !slices.Contains([]string{"programme", "route", "department", "faculty"}, m.SISKind):
			bad("course_year", "applies only to programme, route, department and faculty mappings")
		case len(m.CourseYear) > 3 || strings.ContainsFunc(m.CourseYear, func(c rune) bool { return !unicode.IsDigit(c) && !unicode.IsUpper(c) }):
			bad("course_year", "%q is not a year of study (1, 2, 1A, or P for all postgraduates)", m.CourseYear)
		}
	}
	m.MinRegStatus = strings.ToUpper(f.vals["min_reg_status"])
	if m.MinRegStatus == "" {
		m.MinRegStatus = "APP"
	}
	if !slices.Contains(RegStatuses, m.MinRegStatus) {
		bad("min_reg_status", "%q is not one of %s", f.vals["min_reg_status"], strings.Join(RegStatuses, ", "))
	}
	roles := strings.FieldsFunc(f.vals["roles"], func(c rune) bool { return c == ';' || c == '|' || unicode.IsSpace(c) })
	if len(roles) == 0 {
		roles = []string{"student"}
	}
	for _, role := range roles {
		if len(k.Roles) > 0 && !slices.Contains(k.Roles, role) {
			bad("roles", "%q is not a role of exports.ims_roles (%s)", role, strings.Join(k.Roles, ", "))
		}
	}
	slices.Sort(roles)
	m.Roles = slices.Compact(roles)
	var ok bool
	if v := f.vals["group_sync"]; v != "" {
		if m.GroupSync, ok = parseBool(v); !ok {
			bad("group_sync", "%q is not true or false", v)
		}
	}
	m.Active = true
	if v := f.vals["active"]; v != "" {
		r.ActiveSet = true
		if m.Active, ok = parseBool(v); !ok {
			bad("active", "%q is not true or false", v)
		}
	}
	m.Origin = d.Origin
	return r, probs
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "y", "1", "t":
		return true, true
	case "false", "no", "n", "0", "f":
		return false, true
	}
	return false, false
}

func checkText(s string, max int) string {
	switch {
	case len([]rune(s)) > max:
		return fmt.Sprintf("longer than %d characters", max)
	case strings.ContainsFunc(s, unicode.IsControl):
		return "contains a control character"
	}
	return ""
}

// duplicates reports records that name the same mapping twice.
func duplicates(rows []Row) []Problem {
	var probs []Problem
	first := map[Key]string{}
	for _, r := range rows {
		if r.CourseIDNumber == "" {
			continue
		}
		if w, dup := first[r.Key()]; dup {
			probs = append(probs, Problem{Where: r.Where, Message: "the same mapping as " + w + " (" + r.Key().String() + ")"})
			continue
		}
		first[r.Key()] = r.Where
	}
	return probs
}

// jsonEntry is one course of the JSON shape: {"<shortname>": {"courses":
// [...], "section": "02", "id": 4766}} (a PowerCampus-style mapping file).
// The other keys are MIM's optional additions.
type jsonEntry struct {
	Courses      []string `json:"courses"`
	Section      *string  `json:"section"`
	ID           *int64   `json:"id"`
	IDNumber     string   `json:"idnumber"`
	Instance     string   `json:"instance"`
	Kind         string   `json:"kind"`
	Year         string   `json:"year"`
	CourseYear   string   `json:"course_year"`
	Roles        []string `json:"roles"`
	MinRegStatus string   `json:"min_reg_status"`
	GroupSync    *bool    `json:"group_sync"`
	Active       *bool    `json:"active"`
}

// ParseJSON reads the JSON shape of seed 002: an object whose keys are
// Moodle course shortnames, each mapping to SIS "courses" (one mapping
// each), an optional "section" and the Moodle course "id". The course's
// idnumber is looked up by Resolve unless the entry gives "idnumber". The
// kind defaults to section (sis_key = the SIS course, section = the
// section or "" for all); an entry may say "kind", "year", "course_year",
// "roles", "min_reg_status", "group_sync", "active" and "instance".
func ParseJSON(data []byte, d Defaults, k Knowledge) ([]Row, []Problem) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, []Problem{{Where: "the file", Message: "not a JSON object of Moodle course shortname -> {courses, section, id}"}}
	}
	var rows []Row
	var probs []Problem
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, append(probs, Problem{Where: "the file", Message: "not valid JSON: " + err.Error()})
		}
		short := t.(string)
		where := fmt.Sprintf("entry %q", short)
		if seen[short] {
			probs = append(probs, Problem{Where: where, Message: "given twice"})
		}
		seen[short] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, append(probs, Problem{Where: where, Message: "not valid JSON: " + err.Error()})
		}
		var e jsonEntry
		ed := json.NewDecoder(bytes.NewReader(raw))
		ed.DisallowUnknownFields()
		if err := ed.Decode(&e); err != nil {
			probs = append(probs, Problem{Where: where, Message: "not an entry {courses, section, id, ...}: " + err.Error()})
			continue
		}
		if len(e.Courses) == 0 {
			probs = append(probs, Problem{Where: where, Field: "courses", Message: "required: the SIS courses this Moodle course takes students from"})
			continue
		}
		kind := e.Kind
		if kind == "" {
			kind = d.Kind
		}
		if kind == "" {
			kind = "section"
		}
		for i, c := range e.Courses {
			f := fields{where: fmt.Sprintf("%s course %d", where, i+1)}
			f.set("instance", e.Instance)
			f.set("course_idnumber", e.IDNumber)
			f.set("shortname", short)
			f.set("sis_kind", kind)
			f.set("sis_key", strings.TrimSpace(c))
			f.set("academic_year", e.Year)
			if e.Section != nil {
				f.set("section", strings.TrimSpace(*e.Section))
			}
			f.set("course_year", e.CourseYear)
			f.set("roles", strings.Join(e.Roles, ";"))
			f.set("min_reg_status", e.MinRegStatus)
			if e.GroupSync != nil {
				f.set("group_sync", strconv.FormatBool(*e.GroupSync))
			}
			if e.Active != nil {
				f.set("active", strconv.FormatBool(*e.Active))
			}
			row, ps := f.row(d, k)
			row.Shortname = short
			if e.ID != nil {
				row.CourseID = *e.ID
			}
			rows = append(rows, row)
			probs = append(probs, ps...)
		}
	}
	if len(rows) == 0 && len(probs) == 0 {
		probs = append(probs, Problem{Where: "the file", Message: "no mappings"})
	}
	return rows, probs
}

// Resolve fills in the idnumber of rows that name their Moodle course by
// shortname (and id), from the warehouse's copy of the sites
// (stg.moodle_course), and reports rows whose course cannot be found, has
// no idnumber (IMS Enterprise feeds courses by idnumber), or whose id does
// not match, and rows that name the same mapping twice. Call it on every
// parsed file before Import.
func Resolve(ctx context.Context, tx pgx.Tx, rows []Row) []Problem {
	var need bool
	for _, r := range rows {
		need = need || (r.CourseIDNumber == "" && r.Shortname != "")
	}
	if !need {
		return duplicates(rows)
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('stg.moodle_course') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return []Problem{{Where: "the file", Message: "names Moodle courses by shortname, but the warehouse has no Moodle courses yet: run `mim extract` and `mim transform`, or give each entry an \"idnumber\""}}
	}
	type course struct {
		id       int64
		idnumber *string
	}
	byShort := map[[2]string][]course{}
	rs, err := tx.Query(ctx, `SELECT instance, shortname, course_id, idnumber FROM stg.moodle_course WHERE shortname IS NOT NULL`)
	if err != nil {
		return []Problem{{Where: "the file", Message: "reading Moodle courses: " + err.Error()}}
	}
	for rs.Next() {
		var inst, short string
		var c course
		if err := rs.Scan(&inst, &short, &c.id, &c.idnumber); err != nil {
			rs.Close()
			return []Problem{{Where: "the file", Message: "reading Moodle courses: " + err.Error()}}
		}
		byShort[[2]string{inst, short}] = append(byShort[[2]string{inst, short}], c)
	}
	rs.Close()
	var probs []Problem
	for i := range rows {
		r := &rows[i]
		if r.CourseIDNumber != "" || r.Shortname == "" {
			continue
		}
		cs := byShort[[2]string{r.Instance, r.Shortname}]
		switch {
		case len(cs) == 0:
			probs = append(probs, Problem{Where: r.Where, Field: "shortname", Message: fmt.Sprintf("no course %q on site %s", r.Shortname, r.Instance)})
		case r.CourseID != 0 && cs[0].id != r.CourseID:
			probs = append(probs, Problem{Where: r.Where, Field: "id", Message: fmt.Sprintf("course %q is id %d on site %s, not %d", r.Shortname, cs[0].id, r.Instance, r.CourseID)})
		case cs[0].idnumber == nil:
			probs = append(probs, Problem{Where: r.Where, Field: "idnumber", Message: fmt.Sprintf("course %q (id %d) has no idnumber; IMS Enterprise feeds courses by idnumber: set one in Moodle", r.Shortname, cs[0].id)})
		default:
			r.CourseIDNumber = *cs[0].idnumber
		}
	}
	return append(probs, duplicates(rows)...)
}

// ImportResult counts what an import did.
type ImportResult struct {
	Created, Updated, Unchanged int
}

// Import writes rows (already parsed, resolved and free of problems) in the
// caller's transaction: a new mapping is created (event create), an
// existing one whose roles, minimum status, group sync or (when the file
// says) active state differ is updated (event update, with before and
// after), and an identical one is left alone, so importing the same file
// twice changes nothing the second time.
func Import(ctx context.Context, tx pgx.Tx, rows []Row, by string) (ImportResult, error) {
	var res ImportResult
	existing, err := List(ctx, tx, Filter{})
	if err != nil {
		return res, err
	}
	byKey := map[Key]Mapping{}
	for _, m := range existing {
		byKey[m.Key()] = m
	}
	for _, r := range rows {
		m := r.Mapping
		old, ok := byKey[m.Key()]
		if !ok {
			var id int64
			err := tx.QueryRow(ctx, `INSERT INTO ctl.course_mapping (instance, course_idnumber, sis_kind, sis_key, academic_year, section,
				course_year, min_reg_status, roles, active, group_sync, origin, created_by, updated_by)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) RETURNING mapping_id`,
				m.Instance, m.CourseIDNumber, m.SISKind, m.SISKey, m.AcademicYear, m.Section, m.CourseYear, m.MinRegStatus,
				m.Roles, m.Active, m.GroupSync, m.Origin, by).Scan(&id)
			if err == nil {
				err = event(ctx, tx, id, m, "create", by, map[string]any{"origin": m.Origin, "mapping": describe(m, true)})
			}
			if err != nil {
				return res, fmt.Errorf("importing %s (%s): %w", r.Where, m.Key(), err)
			}
			res.Created++
			continue
		}
		want := old
		want.Roles, want.MinRegStatus, want.GroupSync = m.Roles, m.MinRegStatus, m.GroupSync
		if r.ActiveSet {
			want.Active = m.Active
		}
		if slices.Equal(want.Roles, old.Roles) && want.MinRegStatus == old.MinRegStatus && want.GroupSync == old.GroupSync && want.Active == old.Active {
			res.Unchanged++
			continue
		}
		_, err := tx.Exec(ctx, `UPDATE ctl.course_mapping SET roles = $2, min_reg_status = $3, group_sync = $4, active = $5,
			updated_at = now(), updated_by = $6 WHERE mapping_id = $1`, old.ID, want.Roles, want.MinRegStatus, want.GroupSync, want.Active, by)
		if err == nil {
			err = event(ctx, tx, old.ID, want, "update", by, map[string]any{"origin": m.Origin, "before": describe(old, false), "after": describe(want, false)})
		}
		if err != nil {
			return res, fmt.Errorf("importing %s (%s): %w", r.Where, m.Key(), err)
		}
		res.Updated++
	}
	return res, nil
}

func describe(m Mapping, withKey bool) map[string]any {
	d := map[string]any{"roles": m.Roles, "min_reg_status": m.MinRegStatus, "group_sync": m.GroupSync, "active": m.Active}
	if withKey {
		d["sis_kind"], d["sis_key"], d["academic_year"], d["section"], d["course_year"] = m.SISKind, m.SISKey, m.AcademicYear, m.Section, m.CourseYear
	}
	return d
}

func event(ctx context.Context, tx pgx.Tx, id int64, m Mapping, action, by string, detail map[string]any) error {
	_, err := tx.Exec(ctx, `INSERT INTO ctl.course_mapping_event (mapping_id, instance, course_idnumber, action, by, detail)
		VALUES ($1, $2, $3, $4, $5, $6)`, id, m.Instance, m.CourseIDNumber, action, by, detail)
	return err
}
