package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/mimwarehouse/mim/internal/mapping"
)

// Mappings configures course mappings beyond the ones operators import.
type Mappings struct {
	// Rules derive mappings from Moodle course idnumbers, applied by every
	// transform (after staging) and by `mim mappings derive`.
	Rules []MappingRule `yaml:"rules"`
}

// MappingRule is one rule of mappings.rules: internal/mapping's Rule,
// decoded here and checked against the rest of the configuration.
type MappingRule = mapping.Rule

var ruleName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func (m *Mappings) applyDefaults() {
	for i := range m.Rules {
		m.Rules[i].Defaults()
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
		compiled := false
		if r.Pattern == "" {
			ps.add(path+".pattern", 0, "required: a regular expression over the course idnumber")
		} else if g, err := r.Compile(); err != nil {
			ps.add(path+".pattern", 0, "not a valid regular expression: %v", err)
		} else {
			groups, compiled = g, true
		}
		if !slices.Contains(mapping.SISKinds, r.SISKind) {
			ps.add(path+".sis_kind", 0, "%q is not one of %s", r.SISKind, strings.Join(mapping.SISKinds, ", "))
		}
		for _, t := range r.Templates() {
			if !compiled {
				continue
			}
			if err := mapping.CheckTemplate(t.Template, groups); err != nil {
				ps.add(path+"."+t.Key, 0, "%v", err)
			}
		}
		for j, role := range r.Roles {
			if _, ok := c.Exports.IMSRoles[role]; !ok {
				ps.add(fmt.Sprintf("%s.roles[%d]", path, j), 0, "%q is not a role of exports.ims_roles (%s)", role, strings.Join(sortedKeys(c.Exports.IMSRoles), ", "))
			}
		}
		if !slices.Contains(mapping.RegStatuses, r.MinRegStatus) {
			ps.add(path+".min_reg_status", 0, "%q is not one of %s", r.MinRegStatus, strings.Join(mapping.RegStatuses, ", "))
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
