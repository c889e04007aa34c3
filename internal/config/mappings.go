package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Mappings configures course mappings beyond the ones operators import.
type Mappings struct {
	// Rules derive mappings from Moodle course idnumbers, applied by every
	// transform (after staging) and by `mim mappings derive`.
	Rules []MappingRule `yaml:"rules"`
}

// MappingRule derives a course mapping from every Moodle course whose
// idnumber matches Pattern. Templates (SISKey, AcademicYear, Section,
// CourseYear) write {name} for a named group of Pattern and {0} for the
// whole idnumber; {name:_=/} replaces "_" by "/" in the group's value (the
// course idnumber convention writes the PSL code T1/2 as T1_2).
type MappingRule struct {
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

var (
	ruleName    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	placeholder = regexp.MustCompile(`\{([^{}]*)\}`)
)

func (m *Mappings) applyDefaults() {
	for i := range m.Rules {
		r := &m.Rules[i]
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
}

func (m *Mappings) validate(c *Config, ps *problems) {
	names := map[string]bool{}
	for i := range m.Rules {
		r := &m.Rules[i]
		path := fmt.Sprintf("mappings.rules[%d]", i)
		switch {
		case r.Name == "":
			ps.add(path+".name", 0, "required (it becomes the mappings' origin rule:<name>)")
		case !ruleName.MatchString(r.Name):
			ps.add(path+".name", 0, "%q is not a valid rule name (lower case letters, digits, - and _)", r.Name)
		case names[r.Name]:
			ps.add(path+".name", 0, "rule name %q is used twice", r.Name)
		}
		names[r.Name] = true
		for j, in := range r.Instances {
			if _, ok := c.Site(in); !ok {
				ps.add(fmt.Sprintf("%s.instances[%d]", path, j), 0, "%q is not a configured Moodle site", in)
			}
		}
		var groups []string
		if r.Pattern == "" {
			ps.add(path+".pattern", 0, "required: a regular expression over the course idnumber")
		} else if re, err := regexp.Compile(r.Pattern); err != nil {
			ps.add(path+".pattern", 0, "not a valid regular expression: %v", err)
		} else {
			r.re = re
			groups = re.SubexpNames()
		}
		if !slices.Contains(SISKinds, r.SISKind) {
			ps.add(path+".sis_kind", 0, "%q is not one of %s", r.SISKind, strings.Join(SISKinds, ", "))
		}
		for _, t := range []struct{ key, tmpl string }{
			{"sis_key", r.SISKey}, {"academic_year", r.AcademicYear}, {"section", r.Section}, {"course_year", r.CourseYear},
		} {
			if r.re == nil {
				continue
			}
			if err := checkTemplate(t.tmpl, groups); err != nil {
				ps.add(path+"."+t.key, 0, "%v", err)
			}
		}
		for j, role := range r.Roles {
			if _, ok := c.Exports.IMSRoles[role]; !ok {
				ps.add(fmt.Sprintf("%s.roles[%d]", path, j), 0, "%q is not a role of exports.ims_roles (%s)", role, strings.Join(sortedKeys(c.Exports.IMSRoles), ", "))
			}
		}
		if !slices.Contains(RegStatuses, r.MinRegStatus) {
			ps.add(path+".min_reg_status", 0, "%q is not one of %s", r.MinRegStatus, strings.Join(RegStatuses, ", "))
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkTemplate reports a placeholder that names no group of the pattern.
func checkTemplate(tmpl string, groups []string) error {
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
func (r *MappingRule) Match(idnumber string) (ok bool, sisKey, academicYear, section, courseYear string) {
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
