package app_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/app"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/moodle"
	"github.com/mimwarehouse/mim/moodle/moodletest"
	"github.com/mimwarehouse/mim/moodle/moodletest/recorded"
)

// `mim check` against three simulated sites: one in order, one whose live
// siteurl is another site's and whose token lacks functions, one down.
func TestCheckMoodleSites(t *testing.T) {
	db := pgtest.New(t)
	good := moodletest.NewServer(t, recorded.State(), moodletest.WithToken("goodtoken0123456789abcdef"))
	other := moodletest.NewServer(t, recorded.State(), moodletest.WithSiteURL("https://moodle.example.ac.uk"))
	readOnly := slices.DeleteFunc(slices.Clone(moodle.ReadFunctions), func(f string) bool { return f == "core_group_get_course_groupings" })
	other.AddToken(moodletest.Token{Token: "othertoken0123456789abcdef", Functions: readOnly})
	down := httptest.NewServer(nil)
	down.Close()
	t.Setenv("GOOD_TOKEN", "goodtoken0123456789abcdef")
	cfg := writeConfig(t, fmt.Sprintf(`environment: %s
warehouse: {dsn: "%s"}
moodle:
  - {name: main, url: "%s", token: "${GOOD_TOKEN}", environment: %s, retries: 1}
  - {name: other, url: "%s", token: othertoken0123456789abcdef, environment: production, retries: 1}
  - {name: down, url: "%s", token: x, environment: production, retries: 1}
`, pgtest.Environment, db.DSN.Reveal(), good.URL(), pgtest.Environment, other.URL(), down.URL))
	out, errOut, lines := failingCheck(t, cfg)
	for target, want := range map[string][]string{
		"moodle:main":            {"ok", "Moodle 4.5 (Build: 20241007)", good.URL(), "functions reading it needs are in the token's service"},
		"moodle:main group sync": {"ok", "may create, fill and delete groups"},
		"moodle:other": {"FAIL", "its siteurl is https://moodle.example.ac.uk, not the configured " + other.URL(),
			"lacks core_group_get_course_groupings"},
		"moodle:other group sync": {"ok", `environment "production"`},
		"moodle:down":             {"FAIL", "connection failed"},
	} {
		l, ok := lines[target]
		if !ok {
			t.Errorf("no line for %s:\n%s", target, out)
			continue
		}
		for _, w := range want {
			if !strings.HasPrefix(l, w) && !strings.Contains(l, w) {
				t.Errorf("%s: %q lacks %q", target, l, w)
			}
		}
	}
	for _, secret := range []string{"goodtoken0123456789abcdef", "othertoken0123456789abcdef"} {
		if strings.Contains(out+errOut, secret) {
			t.Errorf("check output shows a token:\n%s%s", out, errOut)
		}
	}
}

// Defects 2 and 4 of the real-Moodle comparison: a role without
// moodle/user:viewalldetails made the site look empty and `mim check` said
// ok; a max_input_vars lower than configured cut writes short silently.
// The check names the missing capability and measures the real limit.
func TestCheckMoodleAccessAndInputVars(t *testing.T) {
	db := pgtest.New(t)
	role := moodletest.Without(moodletest.WebServiceRole(), moodletest.CapViewAllDetails)
	short := moodletest.NewServer(t, recorded.Site2())
	short.AddToken(moodletest.Token{Token: "shorttoken0123456789abcdef", UserID: recorded.Site2WSUser, Capabilities: role})
	tight := moodletest.NewServer(t, recorded.Site2(), moodletest.WithMaxInputVars(40))
	tight.AddToken(moodletest.Token{Token: "tighttoken0123456789abcdef", UserID: recorded.Site2WSUser, Capabilities: moodletest.WebServiceRole()})
	cfg := writeConfig(t, fmt.Sprintf(`environment: %s
warehouse: {dsn: "%s"}
moodle:
  - {name: short, url: "%s", token: shorttoken0123456789abcdef, environment: %s, retries: 1}
  - {name: tight, url: "%s", token: tighttoken0123456789abcdef, environment: %s, retries: 1}
`, pgtest.Environment, db.DSN.Reveal(), short.URL(), pgtest.Environment, tight.URL(), pgtest.Environment))
	_, _, lines := failingCheck(t, cfg)
	for target, want := range map[string]string{
		"moodle:short users":          "FAIL missing capability moodle/user:viewalldetails",
		"moodle:short groups":         "ok",
		"moodle:short max_input_vars": "ok",
		"moodle:tight users":          "ok",
		"moodle:tight max_input_vars": "FAIL PHP keeps 41 form variables per request, but max_input_vars is configured as 900",
	} {
		if l := strings.Join(strings.Fields(lines[target]), " "); !strings.HasPrefix(l, strings.Fields(want)[0]+" "+target) ||
			!strings.Contains(l, strings.TrimPrefix(strings.TrimPrefix(want, "FAIL "), "ok")) {
			t.Errorf("%s: %q, want %q", target, lines[target], want)
		}
	}
}

// failingCheck runs `mim check` on cfg, which must fail (exit 1), and
// returns its output and its lines by target.
func failingCheck(t *testing.T, cfg string) (string, string, map[string]string) {
	t.Helper()
	code, out, errOut := mim(t, "--config", cfg, "check")
	if code != app.ExitFailure {
		t.Errorf("exit %d, want 1:\n%s%s", code, out, errOut)
	}
	t.Logf("mim check:\n%s", out)
	return out, errOut, checkLines(out)
}

// checkLines indexes `mim check`'s lines by their target: the site's name
// and what the line is about (group sync, users, max_input_vars, ...).
func checkLines(out string) map[string]string {
	lines := map[string]string{}
	about := map[string]bool{"users": true, "enrolments": true, "groups": true, "categories": true, "grades": true,
		"courses": true, "max_input_vars": true, "access": true}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		target := f[1]
		switch {
		case len(f) > 3 && f[2] == "group" && f[3] == "sync":
			target += " group sync"
		case len(f) > 3 && f[2] == "tutor": // the tutor table's lines (check_tutor_test.go)
			target += " tutor " + f[3]
		case len(f) > 2 && about[f[2]]:
			target += " " + f[2]
		}
		lines[target] = l
	}
	return lines
}

// `mim check` dials a moodle-db site's database and checks every table a
// read needs is there with the configured prefix; a wrong prefix names the
// tables it could not find.
func TestCheckMoodleDatabase(t *testing.T) {
	wh := pgtest.New(t)
	site := moodletest.NewServer(t, recorded.State(), moodletest.WithToken("goodtoken0123456789abcdef"))
	moodleDB := pgtest.NewEmpty(t)
	sqlDB, err := sql.Open("pgx", moodleDB.DSN.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	defer sqlDB.Close()
	if err := site.WriteTables(context.Background(), sqlDB, moodletest.Postgres, moodletest.TableOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf(`environment: %s
warehouse: {dsn: "%s"}
moodle:
  - {name: replica, url: "%s", token: goodtoken0123456789abcdef, environment: %s, retries: 1,
     kind: moodle-db, database: {driver: pgx, dsn: "%s"}}
  - {name: wrongprefix, url: "%s", token: goodtoken0123456789abcdef, environment: %s, retries: 1,
     kind: moodle-db, database: {driver: pgx, dsn: "%s", prefix: m_}}
`, pgtest.Environment, wh.DSN.Reveal(), site.URL(), pgtest.Environment, moodleDB.DSN.Reveal(), site.URL(), pgtest.Environment,
		moodleDB.DSN.Reveal()))
	code, out, errOut := mim(t, "--config", cfg, "check")
	if code != app.ExitFailure {
		t.Errorf("exit %d, want 1 (one prefix is wrong):\n%s%s", code, out, errOut)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^ok\s+moodle:replica database\s+.*the 18 tables a read needs \(prefix mdl_\) are readable`),
		regexp.MustCompile(`(?m)^FAIL\s+moodle:wrongprefix database\s+18 of the 18 tables a read needs are missing or not readable: m_config, m_context`),
		regexp.MustCompile(`(?m)^ok\s+moodle:replica\s+Moodle 4.5`),
	} {
		if !want.MatchString(out) {
			t.Errorf("mim check does not match %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, ":mim@") || strings.Contains(out, "mim:mim") {
		t.Errorf("mim check prints a password:\n%s", out)
	}
}
