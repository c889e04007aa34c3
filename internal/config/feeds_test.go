package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestExampleProfileFields(t *testing.T) {
	for k, v := range map[string]string{"SITS_DSN": "u/p@h/s", "CMIS_DSN": "u/p@h/s", "MOODLE_MAIN_TOKEN": "t1", "MOODLE_ARCHIVE_TOKEN": "t2", "MOODLE_ARCHIVE_DB_DSN": "postgres://r@h/moodle"} {
		t.Setenv(k, v)
	}
	cfg, err := Load(filepath.Join(repoRoot(t), "mim.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pf := cfg.Exports.ProfileFields
	if len(pf) != 3 || pf[0].Column != "student_number" || pf[0].Shortname != "studentno" || !pf[0].Required ||
		pf[2].Type != "menu" || strings.Join(pf[2].Options, ",") != "UG,PG" {
		t.Errorf("profile_fields = %+v", pf)
	}
}

func TestFeedProblems(t *testing.T) {
	cases := []struct {
		yaml string
		path string
	}{
		{"exports: {profile_fields: [{column: nope, shortname: a}]}", "exports.profile_fields[0].column"},
		{"exports: {profile_fields: [{column: ug_pg, shortname: 'ug pg'}]}", "exports.profile_fields[0].shortname"},
		{"exports: {profile_fields: [{column: ug_pg, shortname: a}, {column: year_level, shortname: A}]}", "exports.profile_fields[1].shortname"},
		{"exports: {profile_fields: [{column: ug_pg, shortname: a, type: radio}]}", "exports.profile_fields[0].type"},
		{"exports: {profile_fields: [{column: ug_pg, shortname: a, options: [UG]}]}", "exports.profile_fields[0].options"},
		{"exports: {profile_fields: [{column: ug_pg, shortname: a, type: menu, options: [' UG']}]}", "exports.profile_fields[0].options[0]"},
		{"exports: {deliver: 'sftp://mim@host/x', sftp: {known_hosts: /k}}", "exports.sftp"},
		{"notify: {smtp: {host: smtp.example.ac.uk, from: m@x.ac.uk}}", "notify.smtp.starttls"},
	}
	for _, c := range cases {
		_, err := Parse([]byte("environment: test\n"+c.yaml+"\n"), envOf(nil))
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("%s: want a configuration error, got %v", c.yaml, err)
			continue
		}
		found := false
		for _, p := range ce.Problems {
			found = found || p.Path == c.path
		}
		if !found {
			t.Errorf("%s: no problem at %s in %v", c.yaml, c.path, err)
		}
	}
	for _, ok := range []string{
		"notify: {smtp: {host: 127.0.0.1, port: 25, from: m@x.ac.uk}}",
		"notify: {smtp: {host: localhost, port: 25, from: m@x.ac.uk}}",
		"notify: {smtp: {host: smtp.example.ac.uk, from: m@x.ac.uk, starttls: true}}",
		"exports: {deliver: 'sftp://mim@host/x', sftp: {known_hosts: /k, key_file: /id}}",
		"exports: {profile_fields: [{column: year_level, shortname: yearlevel, type: menu, options: ['1', '2', '3']}]}",
	} {
		if _, err := Parse([]byte("environment: test\n"+ok+"\n"), envOf(nil)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}
