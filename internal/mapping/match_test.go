package mapping

import (
	"strings"
	"testing"
)

// matchRules, the step of Derive that needs no database: the first rule
// that matches a course decides, in configuration order; a rule limited to
// some sites skips the others; a course whose expansion is unusable is
// reported and not handed to a later rule; academic years are normalised.
func TestMatchRules(t *testing.T) {
	rules := []Rule{
		{Name: "beta-only", Instances: []string{"beta"}, Pattern: `^(?P<mod>[A-Z]{4}\d{4})-.*$`, SISKind: "module_occurrence", SISKey: "{mod}"},
		{Name: "module", Pattern: `^(?P<mod>[A-Z]{4}\d{4})-(?P<occ>[A-Z0-9]+)-(?P<year>[0-9x]{4})$`, SISKind: "module_occurrence",
			SISKey: "{mod}-{occ}", AcademicYear: "{year}", Roles: []string{"student", "editingteacher", "student"}},
		{Name: "anything", Pattern: `^.*$`, SISKind: "programme"},
	}
	for i := range rules {
		rules[i].Defaults()
	}
	courses := []moodleCourse{
		{"main", "COMP0001-A6U-2025"}, // module, on main
		{"beta", "COMP0001-A6U-2025"}, // beta-only comes first on beta
		{"main", "COMP0002-A6U-20x5"}, // module matches, its year is unusable: reported, not "anything"
		{"main", "PROG-X"},            // only anything
	}
	var res DeriveResult
	got := matchRules(courses, rules, &res)
	if res.Matched != 4 || res.InvalidCount != 1 || len(got) != 3 {
		t.Fatalf("matched %d, invalid %d, mappings %d: %+v", res.Matched, res.InvalidCount, len(got), got)
	}
	if !strings.Contains(res.Invalid[0], `main COMP0002-A6U-20x5: rule module gives academic_year "20x5"`) {
		t.Errorf("invalid: %v", res.Invalid)
	}
	want := []struct{ instance, origin, key, year, roles string }{
		{"main", "rule:module", "COMP0001-A6U", "2025", "editingteacher,student"},
		{"beta", "rule:beta-only", "COMP0001", "", "student"},
		{"main", "rule:anything", "PROG-X", "", "student"},
	}
	for i, w := range want {
		m := got[i]
		if m.Instance != w.instance || m.Origin != w.origin || m.SISKey != w.key || m.AcademicYear != w.year ||
			strings.Join(m.Roles, ",") != w.roles || m.MinRegStatus != "APP" {
			t.Errorf("mapping %d: %+v, want %+v", i, m, w)
		}
	}
}
