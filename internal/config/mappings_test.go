package config

import (
	"errors"
	"strings"
	"testing"
)

const mappingBase = `environment: test
moodle:
  - {name: main, url: https://m.example.ac.uk, token: t, environment: test}
`

func TestMappingRulesDefaultAndMatch(t *testing.T) {
	cfg, err := Parse([]byte(mappingBase+`mappings:
  rules:
    - name: occ
      pattern: '^(?P<mod>[A-Z]{4}\d{4})-(?P<occ>[A-Z0-9]+)-(?P<psl>[A-Z0-9_]+)-(?P<year>\d{4})$'
      sis_kind: module_occurrence
      academic_year: "{year}"
      section: "{psl:_=/}"
`), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	r := &cfg.Mappings.Rules[0]
	if r.SISKey != "{0}" || r.MinRegStatus != "APP" || len(r.Roles) != 1 || r.Roles[0] != "student" {
		t.Errorf("defaults: %+v", r)
	}
	ok, key, year, section, _ := r.Match("LAWS0024-A6U-T1_2-2023")
	if !ok || key != "LAWS0024-A6U-T1_2-2023" || year != "2023" || section != "T1/2" {
		t.Errorf("match: %v %q %q %q", ok, key, year, section)
	}
	for _, no := range []string{"LAWS0024-A6U-T1-23", "xLAWS0024-A6U-T1-2023", "LAWS0024-A6U-T1-2023 ", ""} {
		if ok, _, _, _, _ := r.Match(no); ok {
			t.Errorf("%q matched", no)
		}
	}
}

func TestMappingRuleProblems(t *testing.T) {
	_, err := Parse([]byte(mappingBase+`mappings:
  rules:
    - name: Bad Name
      instances: [elsewhere]
      pattern: '^(?P<mod>[A-Z]+'
      sis_kind: module
    - name: two
      pattern: '^(?P<mod>[A-Z]+)$'
      sis_kind: programme
      sis_key: "{code}"
      roles: [dean]
      min_reg_status: REJ
    - name: two
      pattern: '^x$'
      sis_kind: route
      academic_year: "{0:=}"
`), envOf(nil))
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("%v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		`mappings.rules[0].name (line 6): "Bad Name" is not a valid rule name`,
		`mappings.rules[0].instances[0] (line 7): "elsewhere" is not a configured Moodle site`,
		"mappings.rules[0].pattern (line 8): not a valid regular expression",
		`mappings.rules[0].sis_kind (line 9): "module" is not one of module_occurrence`,
		`mappings.rules[1].sis_key (line 13): "{code}" uses {code}, which is not a named group`,
		`mappings.rules[1].roles[0] (line 14): "dean" is not a role of exports.ims_roles`,
		`mappings.rules[1].min_reg_status (line 15): "REJ" is not one of CON, APP, NEW`,
		`mappings.rules[2].name (line 16): rule name "two" is used twice`,
		`mappings.rules[2].academic_year (line 19): "{0:=}": write a replacement as {name:old=new}`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
}
