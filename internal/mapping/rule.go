package mapping

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Rule derives a course mapping from every Moodle course whose idnumber
// matches Pattern (mappings.rules[] in the configuration, which decodes into
// this type). Templates (SISKey, AcademicYear, Section, CourseYear) write
// {name} for a named group of Pattern and {0} for the whole idnumber;
// {name:_=/} replaces "_" by "/" in the group's value (the course idnumber
// convention writes the PSL code T1/2 as T1_2).
type Rule struct {
	Name string `yaml:"name"`
	// Instances limits the rule to these Moodle sites; empty means all.
	Instances []string `yaml:"instances"`
	// Pattern is a Go regular expression (RE2) matched against the whole
	// idnumber, e.g. ^(?P<mod>[A-Z]{4}\d{4})-(?P<occ>[A-Z0-9]+)-(?P<psl>[A-Z0-9_]+)-(?P<year>\d{4})$
	Pattern      string   `yaml:"pattern"`
	SISKind      string   `yaml:"sis_kind"`
	SISKey       string   `yaml:"sis_key"`       // default {0}
	AcademicYear string   `yaml:"academic_year"` // default: any year
	Section      string   `yaml:"section"`
	CourseYear   string   `yaml:"course_year"`
	Roles        []string `yaml:"roles"`          // default [student]
	MinRegStatus string   `yaml:"min_reg_status"` // default APP
	GroupSync    bool     `yaml:"group_sync"`

	re *regexp.Regexp
}

// SISKinds are the kinds of SIS entity a Moodle course can be mapped to
// (ctl.course_mapping.sis_kind).
var SISKinds = []string{"module_occurrence", "programme", "route", "department", "faculty", "section"}

// RegStatuses are the minimum registration statuses a mapping may require.
var RegStatuses = []string{"CON", "APP", "NEW"}

var placeholder = regexp.MustCompile(`\{([^{}]*)\}`)

// Defaults fills what the rule leaves out: sis_key {0}, roles [student],
// min_reg_status APP.
func (r *Rule) Defaults() {
	if r.SISKey == "" {
		r.SISKey = "{0}"
	}
	if len(r.Roles) == 0 {
		r.Roles = []string{"student"}
	}
	if r.MinRegStatus == "" {
		r.MinRegStatus = "APP"
	}
}

// Compile compiles the rule's pattern and returns its named groups.
func (r *Rule) Compile() (groups []string, err error) {
	re, err := regexp.Compile(r.Pattern)
	if err != nil {
		return nil, err
	}
	r.re = re
	return re.SubexpNames(), nil
}

// Templates are the rule's templates by configuration key.
func (r *Rule) Templates() []struct{ Key, Template string } {
	return []struct{ Key, Template string }{
		{"sis_key", r.SISKey}, {"academic_year", r.AcademicYear}, {"section", r.Section}, {"course_year", r.CourseYear},
	}
}

// CheckTemplate reports a placeholder of tmpl that names no group of the
// pattern (groups are the pattern's group names), or a malformed one.
func CheckTemplate(tmpl string, groups []string) error {
	if strings.Count(tmpl, "{") != strings.Count(tmpl, "}") {
		return fmt.Errorf("%q has unbalanced braces", tmpl)
	}
	for _, m := range placeholder.FindAllStringSubmatch(tmpl, -1) {
		name, repl, hasRepl := strings.Cut(m[1], ":")
		if hasRepl {
			if old, _, ok := strings.Cut(repl, "="); !ok || old == "" {
				return fmt.Errorf("%q: write a replacement as {name:old=new}", tmpl)
			}
		}
		if name == "0" {
			continue
		}
		if name == "" || !slices.Contains(groups, name) {
			return fmt.Errorf("%q uses {%s}, which is not a named group of the pattern", tmpl, name)
		}
	}
	return nil
}

// Match applies the rule to one course idnumber: whether it matches, and
// the expanded sis_key, academic_year, section and course_year.
func (r *Rule) Match(idnumber string) (ok bool, sisKey, academicYear, section, courseYear string) {
	if r.re == nil {
		r.re = regexp.MustCompile(r.Pattern)
	}
	m := r.re.FindStringSubmatchIndex(idnumber)
	if m == nil || m[0] != 0 || m[1] != len(idnumber) {
		return false, "", "", "", ""
	}
	names := r.re.SubexpNames()
	value := func(name string) string {
		if name == "0" {
			return idnumber
		}
		for i, n := range names {
			if n == name && m[2*i] >= 0 {
				return idnumber[m[2*i]:m[2*i+1]]
			}
		}
		return ""
	}
	expand := func(tmpl string) string {
		return placeholder.ReplaceAllStringFunc(tmpl, func(ph string) string {
			name, repl, hasRepl := strings.Cut(ph[1:len(ph)-1], ":")
			v := value(name)
			if hasRepl {
				old, new, _ := strings.Cut(repl, "=")
				v = strings.ReplaceAll(v, old, new)
			}
			return v
		})
	}
	return true, expand(r.SISKey), expand(r.AcademicYear), expand(r.Section), expand(r.CourseYear)
}
