// Package oneroster writes and checks OneRoster 1.2 CSV (1EdTech): a zip of
// manifest.csv and the rostering files orgs, academicSessions, courses,
// classes, users, roles and enrollments, bulk (every row, status and
// dateLastModified blank) or delta (changed rows "active", removed ones
// "tobedeleted", both dated). Rows are checked against the spec's
// required columns and vocabularies as they are written, and the finished
// zip is re-read and checked whole (headers, manifest, references) before
// it is published. OneRoster 1.2 moved a user's role and organisations
// from users.csv to roles.csv, so roles.csv goes with users.csv.
package oneroster

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Mode is how a file is given in the manifest.
type Mode string

// The manifest's modes.
const (
	Absent Mode = "absent"
	Bulk   Mode = "bulk"
	Delta  Mode = "delta"
)

// Files are the rostering files MIM writes, in the order it writes them
// (referenced before referencing).
var Files = []string{"orgs", "academicSessions", "courses", "classes", "users", "roles", "enrollments"}

// manifestFiles are every file.* property of a 1.2 manifest.
var manifestFiles = []string{"academicSessions", "categories", "classes", "classResources", "courses", "courseResources",
	"demographics", "enrollments", "lineItemLearningObjectiveIds", "lineItems", "lineItemScoreScales", "orgs", "resources",
	"resultLearningObjectiveIds", "results", "resultScoreScales", "roles", "scoreScales", "userProfiles", "userResources", "users"}

// common are the first three columns of every file.
var common = []string{"sourcedId", "status", "dateLastModified"}

// Columns are each file's columns after the common three, in the spec's
// order (the order mart.exp_oneroster's fields follow).
var Columns = map[string][]string{
	"orgs":             {"name", "type", "identifier", "parentSourcedId"},
	"academicSessions": {"title", "type", "startDate", "endDate", "parentSourcedId", "schoolYear"},
	"courses":          {"schoolYearSourcedId", "title", "courseCode", "grades", "orgSourcedId", "subjects", "subjectCodes"},
	"classes": {"title", "grades", "courseSourcedId", "classCode", "classType", "location", "schoolSourcedId", "termSourcedIds",
		"subjects", "subjectCodes", "periods"},
	"users": {"enabledUser", "username", "userIds", "givenName", "familyName", "middleName", "identifier", "email", "sms", "phone",
		"agentSourcedIds", "grades", "password", "userMasterIdentifier", "resourceSourcedIds", "preferredGivenName",
		"preferredMiddleName", "preferredFamilyName", "primaryOrgSourcedId", "pronouns"},
	"roles":       {"userSourcedId", "roleType", "role", "beginDate", "endDate", "orgSourcedId", "userProfileSourcedId"},
	"enrollments": {"classSourcedId", "schoolSourcedId", "userSourcedId", "role", "primary", "beginDate", "endDate"},
}

// required are the columns that must hold a value in an active row.
var required = map[string][]string{
	"orgs":             {"name", "type"},
	"academicSessions": {"title", "type", "startDate", "endDate", "schoolYear"},
	"courses":          {"title", "orgSourcedId"},
	"classes":          {"title", "courseSourcedId", "classType", "schoolSourcedId", "termSourcedIds"},
	"users":            {"enabledUser", "username", "givenName", "familyName"},
	"roles":            {"userSourcedId", "roleType", "role", "orgSourcedId"},
	"enrollments":      {"classSourcedId", "schoolSourcedId", "userSourcedId", "role"},
}

// vocabulary are the values a column may take (empty allowed unless
// required).
var vocabulary = map[string]map[string][]string{
	"orgs":             {"type": {"department", "school", "district", "local", "state", "national"}},
	"academicSessions": {"type": {"gradingPeriod", "semester", "schoolYear", "term"}},
	"classes":          {"classType": {"homeroom", "scheduled"}},
	"users":            {"enabledUser": {"true", "false"}},
	"roles": {"roleType": {"primary", "secondary"}, "role": {"aide", "counselor", "districtAdministrator", "guardian", "parent",
		"principal", "proctor", "relative", "siteAdministrator", "student", "systemAdministrator", "teacher"}},
	"enrollments": {"role": {"administrator", "proctor", "student", "teacher"}, "primary": {"true", "false"}},
}

// dates are columns holding YYYY-MM-DD.
var dates = map[string][]string{
	"academicSessions": {"startDate", "endDate"},
	"roles":            {"beginDate", "endDate"},
	"enrollments":      {"beginDate", "endDate"},
}

// references are columns naming a sourcedId of another file (lists for
// the plural names).
var references = map[string]map[string]string{
	"orgs":             {"parentSourcedId": "orgs"},
	"academicSessions": {"parentSourcedId": "academicSessions"},
	"courses":          {"schoolYearSourcedId": "academicSessions", "orgSourcedId": "orgs"},
	"classes":          {"courseSourcedId": "courses", "schoolSourcedId": "orgs", "termSourcedIds": "academicSessions"},
	"users":            {"primaryOrgSourcedId": "orgs"},
	"roles":            {"userSourcedId": "users", "orgSourcedId": "orgs"},
	"enrollments":      {"classSourcedId": "classes", "schoolSourcedId": "orgs", "userSourcedId": "users"},
}

// Header is a file's whole header.
func Header(file string) []string { return append(slices.Clone(common), Columns[file]...) }

// Status of a delta row.
const (
	Active      = "active"
	ToBeDeleted = "tobedeleted"
)

// Row is one row of a file: its sourcedId, its status (delta only) and its
// columns after the common three.
type Row struct {
	SourcedID string
	Status    string // "" in bulk; Active or ToBeDeleted in delta
	Fields    []string
}

// RowError is a row the writer refuses: nothing of it was written.
type RowError struct {
	File, SourcedID, Column, Why string
}

func (e *RowError) Error() string {
	return fmt.Sprintf("OneRoster %s.csv row %q: %s %s", e.File, e.SourcedID, e.Column, e.Why)
}

// IsRowError reports a refused row.
func IsRowError(err error) bool {
	var re *RowError
	return errors.As(err, &re)
}

var dateRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// checkRow says why a row cannot be written in mode m, or nil.
func checkRow(file string, m Mode, r Row) error {
	bad := func(col, why string) error {
		return &RowError{File: file, SourcedID: r.SourcedID, Column: col, Why: why}
	}
	cols := Columns[file]
	if len(r.Fields) != len(cols) {
		return bad("", fmt.Sprintf("has %d fields, the file %d", len(r.Fields), len(cols)))
	}
	if r.SourcedID == "" || strings.TrimSpace(r.SourcedID) != r.SourcedID {
		return bad("sourcedId", "is empty or spaced")
	}
	switch {
	case m == Bulk && r.Status != "":
		return bad("status", "must be blank in a bulk file")
	case m == Delta && r.Status != Active && r.Status != ToBeDeleted:
		return bad("status", fmt.Sprintf("%q is not active or tobedeleted", r.Status))
	}
	for i, v := range r.Fields {
		if strings.ContainsAny(v, "\r\n") || strings.ContainsRune(v, 0) {
			return bad(cols[i], "holds a line break")
		}
	}
	if r.Status == ToBeDeleted {
		return nil // only the sourcedId matters
	}
	get := func(col string) string { return r.Fields[slices.Index(cols, col)] }
	for _, col := range required[file] {
		if strings.TrimSpace(get(col)) == "" {
			return bad(col, "is required and empty")
		}
	}
	for col, allowed := range vocabulary[file] {
		if v := get(col); v != "" && !slices.Contains(allowed, v) {
			return bad(col, fmt.Sprintf("%q is not one of %s", v, strings.Join(allowed, ", ")))
		}
	}
	for _, col := range dates[file] {
		if v := get(col); v != "" {
			if _, err := time.Parse("2006-01-02", v); err != nil || !dateRe.MatchString(v) {
				return bad(col, fmt.Sprintf("%q is not a date YYYY-MM-DD", v))
			}
		}
	}
	if file == "academicSessions" {
		if y := get("schoolYear"); len(y) != 4 || strings.Trim(y, "0123456789") != "" {
			return bad("schoolYear", fmt.Sprintf("%q is not a year YYYY", y))
		}
		if get("startDate") > get("endDate") {
			return bad("endDate", "is before startDate")
		}
	}
	return nil
}

// Writer writes one OneRoster zip: the manifest, then each file's rows.
type Writer struct {
	zw       *zip.Writer
	when     time.Time
	modes    map[string]Mode
	modified string
	cur      string
	cw       *csv.Writer
	done     map[string]bool
	counts   map[string]int
}

// NewWriter starts a zip and writes the manifest: modes gives each of
// Files its mode (missing: absent); modified dates every delta row.
func NewWriter(w io.Writer, modes map[string]Mode, system string, modified time.Time) (*Writer, error) {
	zw := zip.NewWriter(w)
	x := &Writer{zw: zw, when: modified, modes: modes, modified: modified.UTC().Format("2006-01-02T15:04:05.000Z"),
		done: map[string]bool{}, counts: map[string]int{}}
	f, err := x.create("manifest.csv")
	if err != nil {
		return nil, err
	}
	cw := csv.NewWriter(f)
	rows := [][]string{{"propertyName", "value"}, {"manifest.version", "1.0"}, {"oneroster.version", "1.2"}}
	for _, name := range manifestFiles {
		m := modes[name]
		if m == "" {
			m = Absent
		}
		if !slices.Contains(Files, name) && m != Absent {
			return nil, fmt.Errorf("OneRoster: MIM does not write %s.csv", name)
		}
		rows = append(rows, []string{"file." + name, string(m)})
	}
	rows = append(rows, []string{"source.systemName", system}, []string{"source.systemCode", "mim"})
	if err := cw.WriteAll(rows); err != nil {
		return nil, err
	}
	return x, nil
}

// create starts a zip entry dated at the export.
func (x *Writer) create(name string) (io.Writer, error) {
	return x.zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: x.when})
}

// Begin starts a file (in the order of Files); its mode must not be absent.
func (x *Writer) Begin(file string) error {
	if err := x.end(); err != nil {
		return err
	}
	if x.modes[file] != Bulk && x.modes[file] != Delta {
		return fmt.Errorf("OneRoster: %s.csv is %q in the manifest", file, x.modes[file])
	}
	if x.done[file] {
		return fmt.Errorf("OneRoster: %s.csv written twice", file)
	}
	f, err := x.create(file + ".csv")
	if err != nil {
		return err
	}
	x.cur, x.cw = file, csv.NewWriter(f)
	x.done[file] = true
	return x.cw.Write(Header(file))
}

// Write writes one row of the current file, or refuses it with a
// *RowError and writes nothing.
func (x *Writer) Write(r Row) error {
	if x.cw == nil {
		return errors.New("OneRoster: Write before Begin")
	}
	if err := checkRow(x.cur, x.modes[x.cur], r); err != nil {
		return err
	}
	rec := make([]string, 0, 3+len(r.Fields))
	mod := ""
	if r.Status != "" {
		mod = x.modified
	}
	rec = append(rec, r.SourcedID, r.Status, mod)
	rec = append(rec, r.Fields...)
	x.counts[x.cur]++
	return x.cw.Write(rec)
}

func (x *Writer) end() error {
	if x.cw == nil {
		return nil
	}
	x.cw.Flush()
	err := x.cw.Error()
	x.cw = nil
	return err
}

// Counts returns the rows written per file.
func (x *Writer) Counts() map[string]int { return x.counts }

// Close ends the zip; every file the manifest lists must have been
// written. It does not close the underlying io.Writer.
func (x *Writer) Close() error {
	if err := x.end(); err != nil {
		return err
	}
	for _, f := range Files {
		if m := x.modes[f]; (m == Bulk || m == Delta) && !x.done[f] {
			return fmt.Errorf("OneRoster: the manifest lists %s.csv as %s but it was not written", f, m)
		}
	}
	return x.zw.Close()
}

// Summary is what a checked zip holds.
type Summary struct {
	Modes map[string]Mode
	Rows  map[string]int
}

// Validate re-reads a OneRoster zip whole: the manifest (versions, every
// file.* property, each listed file present and no other), each file's
// header, every row against the required columns, vocabularies and dates,
// unique sourcedIds, and, between the files of a bulk set, every reference.
func Validate(data []byte) (*Summary, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("OneRoster: not a zip: %w", err)
	}
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		files[f.Name] = f
	}
	read := func(name string) ([][]string, error) {
		f := files[name]
		if f == nil {
			return nil, fmt.Errorf("OneRoster: %s is missing", name)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		cr := csv.NewReader(rc)
		recs, err := cr.ReadAll()
		if err != nil {
			return nil, fmt.Errorf("OneRoster: %s: %w", name, err)
		}
		if len(recs) == 0 {
			return nil, fmt.Errorf("OneRoster: %s has no header", name)
		}
		return recs, nil
	}
	man, err := read("manifest.csv")
	if err != nil {
		return nil, err
	}
	props := map[string]string{}
	if !slices.Equal(man[0], []string{"propertyName", "value"}) {
		return nil, fmt.Errorf("OneRoster: manifest.csv header is %v", man[0])
	}
	for _, r := range man[1:] {
		props[r[0]] = r[1]
	}
	if props["manifest.version"] != "1.0" || props["oneroster.version"] != "1.2" {
		return nil, fmt.Errorf("OneRoster: manifest says manifest.version %q, oneroster.version %q", props["manifest.version"], props["oneroster.version"])
	}
	sum := &Summary{Modes: map[string]Mode{}, Rows: map[string]int{}}
	for _, name := range manifestFiles {
		m := Mode(props["file."+name])
		switch m {
		case Absent, Bulk, Delta:
		default:
			return nil, fmt.Errorf("OneRoster: manifest file.%s is %q, not absent, bulk or delta", name, m)
		}
		_, present := files[name+".csv"]
		if present != (m != Absent) {
			return nil, fmt.Errorf("OneRoster: manifest says %s.csv is %s, and the zip %s it", name, m, map[bool]string{true: "has", false: "lacks"}[present])
		}
		sum.Modes[name] = m
	}
	ids := map[string]map[string]bool{}
	rows := map[string][][]string{}
	for _, name := range Files {
		m := sum.Modes[name]
		if m == Absent {
			continue
		}
		recs, err := read(name + ".csv")
		if err != nil {
			return nil, err
		}
		if !slices.Equal(recs[0], Header(name)) {
			return nil, fmt.Errorf("OneRoster: %s.csv header %v, want %v", name, recs[0], Header(name))
		}
		ids[name] = map[string]bool{}
		for i, rec := range recs[1:] {
			r := Row{SourcedID: rec[0], Status: rec[1], Fields: rec[3:]}
			if err := checkRow(name, m, r); err != nil {
				return nil, fmt.Errorf("line %d: %w", i+2, err)
			}
			if (m == Bulk) != (rec[2] == "") {
				return nil, fmt.Errorf("OneRoster: %s.csv line %d: dateLastModified must be blank in bulk and set in delta", name, i+2)
			}
			if rec[2] != "" {
				if _, err := time.Parse(time.RFC3339, rec[2]); err != nil {
					return nil, fmt.Errorf("OneRoster: %s.csv line %d: dateLastModified %q is not ISO 8601", name, i+2, rec[2])
				}
			}
			if ids[name][rec[0]] {
				return nil, fmt.Errorf("OneRoster: %s.csv line %d: sourcedId %q repeated", name, i+2, rec[0])
			}
			ids[name][rec[0]] = true
		}
		rows[name] = recs[1:]
		sum.Rows[name] = len(recs) - 1
	}
	// References hold within a bulk set (a delta refers to rows sent before).
	for file, refs := range references {
		if sum.Modes[file] != Bulk {
			continue
		}
		cols := Header(file)
		for col, target := range refs {
			if sum.Modes[target] != Bulk {
				continue
			}
			ci := slices.Index(cols, col)
			for i, rec := range rows[file] {
				if rec[ci] == "" {
					continue
				}
				for _, id := range strings.Split(rec[ci], ",") {
					if !ids[target][strings.TrimSpace(id)] {
						return nil, fmt.Errorf("OneRoster: %s.csv line %d: %s %q is not a sourcedId of %s.csv", file, i+2, col, id, target)
					}
				}
			}
		}
	}
	return sum, nil
}
