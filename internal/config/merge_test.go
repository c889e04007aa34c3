package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// The merge list's keep rules default to the account the student logs in
// with, always end in a total order, and say what is wrong with them.
func TestMergeOptions(t *testing.T) {
	const base = `environment: test
moodle:
  - {name: main, url: "https://moodle.example.ac.uk", token: t, environment: test, main_auth: saml2, tutor_db_user: moodle_main}
`
	cfg, err := Parse([]byte(base), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Exports.Merge.Keep, DefaultMergeKeep) || !cfg.Exports.Merge.Carry() {
		t.Errorf("defaults: keep %v, carry %v", cfg.Exports.Merge.Keep, cfg.Exports.Merge.Carry())
	}
	if s := cfg.Moodle[0]; s.MainAuth != "saml2" || s.TutorDBUser != "moodle_main" {
		t.Errorf("site: main_auth %q, tutor_db_user %q", s.MainAuth, s.TutorDBUser)
	}
	cfg, err = Parse([]byte(base+"exports: {merge: {keep: [main_auth, last_access], carry_idnumber: false}}\n"), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Exports.Merge.Keep, ","); got != "main_auth,last_access,newest" || cfg.Exports.Merge.Carry() {
		t.Errorf("keep %s (newest added), carry %v", got, cfg.Exports.Merge.Carry())
	}

	const bad = `environment: test
moodle:
  - {name: main, url: "https://moodle.example.ac.uk", token: t, environment: test, main_auth: "LDAP auth", tutor_db_user: "moodle main"}
exports: {merge: {keep: [sis_username, highest_id, sis_username, newest, oldest]}}
`
	_, err = Parse([]byte(bad), envOf(nil))
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *Error, got %v", err)
	}
	for _, w := range []string{
		`moodle[0].main_auth (line 3): "LDAP auth" is not an authentication plugin name`,
		`moodle[0].tutor_db_user (line 3): "moodle main" is not a PostgreSQL role name`,
		`exports.merge.keep[1] (line 4): "highest_id" is not a keep rule (active, idnumber, last_access, main_auth, newest, oldest, sis_username)`,
		`exports.merge.keep[2] (line 4): "sis_username" is listed twice`,
		`exports.merge.keep (line 4): lists both newest and oldest`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q:\n%s", w, err)
		}
	}
}
