package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func TestExampleConfigLoads(t *testing.T) {
	t.Setenv("SITS_DSN", "mim_reader/sitspw@sits-db:1521/SIS")
	t.Setenv("CMIS_DSN", "mim_reader/cmispw@cmis-db:1521/GEN")
	t.Setenv("MOODLE_MAIN_TOKEN", "tok-main-0123456789")
	t.Setenv("MOODLE_ARCHIVE_TOKEN", "tok-archive-0123456789")
	t.Setenv("MIM_DATABASE_URL", "")
	cfg, err := Load(filepath.Join(repoRoot(t), "mim.example.yaml"))
	if err != nil {
		t.Fatalf("example configuration does not load: %v", err)
	}
	if cfg.Environment != "staging" {
		t.Errorf("environment = %q", cfg.Environment)
	}
	if len(cfg.Moodle) != 2 || cfg.Moodle[0].Name != "main" || cfg.Moodle[1].Name != "archive" {
		t.Fatalf("moodle sites = %+v", cfg.Moodle)
	}
	main := cfg.Moodle[0]
	if main.Token.Reveal() != "tok-main-0123456789" || main.RatePerSecond != 20 || main.Concurrency != 8 || main.Timeout != time.Minute {
		t.Errorf("site main decoded wrongly: %+v", main)
	}
	if a := cfg.Moodle[1]; a.MaxInputVars != 900 || a.IMSTarget != "archive" || a.GroupPrefix != "mim:" {
		t.Errorf("defaults not applied to site archive: %+v", a)
	}
	// MIM_DATABASE_URL is set but empty, so the default in the file applies.
	if got := cfg.Warehouse.DSN.Reveal(); got != "postgres://mim:mim@127.0.0.1:5432/mim?sslmode=disable" {
		t.Errorf("warehouse dsn = %q", got)
	}
	if cfg.Sources.SITS == nil || cfg.Sources.SITS.Driver != "godror" || cfg.Sources.SITS.MinYear != 2025 {
		t.Errorf("sits = %+v", cfg.Sources.SITS)
	}
	if cfg.Exports.IMSRoles["teacher"] != "08" {
		t.Errorf("ims roles = %v", cfg.Exports.IMSRoles)
	}
	if cfg.Schedule.Nightly != "CRON_TZ=Europe/London 15 0 * * *" {
		t.Errorf("schedule = %+v", cfg.Schedule)
	}
}

// A bad file gets one error listing every problem, each with its key path.
func TestAllProblemsReportedAtOnce(t *testing.T) {
	const bad = `
environment: Staging!
warehouse:
  dsn: "${MIM_DATABASE_URL:-postgres:///mim}"
  max_conns: lots
  statment_timeout: 5m
sources:
  sits: {driver: oracle, dsn: "${SITS_DSN}", min_year: 25}
moodle:
  - name: main
    url: http://moodle.example.ac.uk
    token: "${NO_SUCH_TOKEN}"
    rate_per_second: 20
    concurrency: 100
    entities: [users, enrollments]
  - name: main
    url: https://moodle2.example.ac.uk
    token: secret-token-value
    environment: production
    timeout: soon
exports:
  ims_roles: {student: "1"}
colour: blue
`
	_, err := Parse([]byte(bad), envOf(nil))
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *Error, got %v", err)
	}
	want := []string{
		"environment (line 2): \"Staging!\" is not a valid environment name",
		"warehouse.max_conns (line 5): invalid whole number \"lots\"",
		"warehouse.statment_timeout (line 6): unknown key",
		"sources.sits.driver (line 8): \"oracle\" is not supported",
		"sources.sits.dsn (line 8): environment variable SITS_DSN is not set",
		"sources.sits.min_year (line 8): 25 is not a plausible academic start year",
		"moodle[0].url (line 11): must be https",
		"moodle[0].token (line 12): environment variable NO_SUCH_TOKEN is not set",
		"moodle[0].environment: required",
		"moodle[0].concurrency (line 14): must be between 1 and 64",
		"moodle[0].entities[1] (line 15): unknown entity \"enrollments\"",
		"moodle[1].name (line 16): site name \"main\" is used twice",
		"moodle[1].timeout (line 20): invalid duration \"soon\"",
		"exports.ims_roles.student (line 22): \"1\" is not an IMS roletype code",
		"colour (line 23): unknown key",
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not mention %q\nfull error:\n%s", w, msg)
		}
	}
	if len(ce.Problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(ce.Problems), len(want), msg)
	}
	if strings.Contains(msg, "secret-token-value") {
		t.Errorf("error leaks a token:\n%s", msg)
	}
	if ce.ExitCode() != 2 {
		t.Errorf("exit code = %d, want 2", ce.ExitCode())
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	cfg, err := Parse([]byte(`
environment: test
warehouse: {dsn: "postgres://mim:hunter2@db.example.ac.uk:5432/mim"}
sources:
  sits: {driver: godror, dsn: "reader/tiger@sits:1521/SIS"}
moodle:
  - {name: main, url: https://m.example.ac.uk, token: tok-abcdef123456, environment: test}
`), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	var logged, loggedJSON strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "cfg", cfg, "site", cfg.Moodle[0], "token", cfg.Moodle[0].Token)
	// mim's JSON log (log.format: json) encodes structs with encoding/json.
	slog.New(slog.NewJSONHandler(&loggedJSON, nil)).Info("config", "cfg", cfg, "site", cfg.Moodle[0], "token", cfg.Moodle[0].Token)
	encoded, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(encoded), `"Token":"[redacted]"`) {
		t.Errorf("the token should encode as redacted: %s", encoded)
	}
	for _, out := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", *cfg), fmt.Sprintf("%#v", *cfg), logged.String(),
		loggedJSON.String(), string(encoded)} {
		for _, secret := range []string{"hunter2", "tiger", "tok-abcdef123456"} {
			if strings.Contains(out, secret) {
				t.Errorf("printed configuration contains %q:\n%s", secret, out)
			}
		}
	}
	if !strings.Contains(fmt.Sprintf("%v", cfg.Warehouse.DSN), "db.example.ac.uk:5432/mim") {
		t.Errorf("redacted DSN should still show host and database: %v", cfg.Warehouse.DSN)
	}
}

func TestRedactDSN(t *testing.T) {
	cases := map[string]string{
		"postgres://mim:pw@h:5432/db?sslmode=disable":                "postgres://mim:xxxxx@h:5432/db?sslmode=disable",
		"postgres://mim@h/db":                                        "postgres://mim@h/db",
		"postgres://h/db?password=pw&sslmode=require":                "postgres://h/db?password=xxxxx&sslmode=require",
		"host=h user=mim password=pw dbname=mim":                     "host=h user=mim password=xxxxx dbname=mim",
		"host=h password='p w' dbname=mim":                           "host=h password=xxxxx dbname=mim",
		`user="scott" password="ti ger" connectString="db:1521/SIS"`: `user="scott" password=xxxxx connectString="db:1521/SIS"`,
		"scott/tiger@sits-db:1521/SIS":                               "scott/xxxxx@sits-db:1521/SIS",
		"":                                                           "",
	}
	for in, want := range cases {
		if got := RedactDSN(in); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExpand(t *testing.T) {
	env := envOf(map[string]string{"A": "alpha", "EMPTY": ""})
	cases := []struct{ in, want, err string }{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "alpha"},
		{in: "x-${A}-y", want: "x-alpha-y"},
		{in: "${EMPTY}", want: ""},
		{in: "${EMPTY:-d}", want: "d"},
		{in: "${UNSET:-d}", want: "d"},
		{in: "${UNSET:-}", want: ""},
		{in: "cost $$5 and $HOME", want: "cost $5 and $HOME"},
		{in: "${UNSET}", err: "environment variable UNSET is not set"},
		{in: "${A", err: "unterminated"},
		{in: "${1A}", err: "invalid variable reference"},
	}
	for _, c := range cases {
		got, err := expand(c.in, env)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("expand(%q) error = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("expand(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// An environment value is substituted into one scalar; it cannot inject keys.
func TestExpansionCannotChangeStructure(t *testing.T) {
	env := envOf(map[string]string{"TOKEN": "x\nenvironment: production"})
	cfg, err := Parse([]byte(`
environment: staging
moodle:
  - {name: main, url: https://m.example.ac.uk, token: "${TOKEN}", environment: staging}
`), env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Environment != "staging" || cfg.Moodle[0].Environment != "staging" {
		t.Errorf("environment changed by an injected value: %+v", cfg)
	}
}

func TestShapeErrors(t *testing.T) {
	_, err := Parse([]byte("environment: [a, b]\nmoodle: {name: x}\nwarehouse: 3\n"), envOf(nil))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, w := range []string{"environment (line 1): expected a single value, found a list", "moodle (line 2): expected a list, found a mapping", "warehouse (line 3): expected a mapping"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	if _, err := Parse([]byte("environment: a\n---\nenvironment: b\n"), envOf(nil)); err == nil || !strings.Contains(err.Error(), "more than one YAML document") {
		t.Errorf("two documents: %v", err)
	}
	if _, err := Parse([]byte("environment: a\nenvironment: b\n"), envOf(nil)); err == nil {
		t.Errorf("a repeated key must be an error")
	}
}

// A value that came from the environment is never echoed in a problem: a
// secret put in the wrong variable (or the wrong key) must not reach a log.
func TestConfigErrorsNeverEchoExpandedValues(t *testing.T) {
	env := envOf(map[string]string{"SMTP_PORT": "s3cr3t-p4ss", "SITE_NAME": "Hunter2 Moodle", "WAIT": "tiger-tiger"})
	_, err := Parse([]byte(`
environment: test
notify: {smtp: {host: smtp.example.ac.uk, port: "${SMTP_PORT}", from: mim@example.ac.uk}}
moodle:
  - {name: "${SITE_NAME}", url: https://m.example.ac.uk, token: t, environment: test, timeout: "${WAIT}"}
`), env)
	if err == nil {
		t.Fatal("want problems")
	}
	msg := err.Error()
	for _, secret := range []string{"s3cr3t-p4ss", "Hunter2", "tiger-tiger"} {
		if strings.Contains(msg, secret) {
			t.Errorf("the problem echoes %q:\n%s", secret, msg)
		}
	}
	for _, ref := range []string{"${SMTP_PORT}", "${SITE_NAME}", "${WAIT}"} {
		if !strings.Contains(msg, ref) {
			t.Errorf("the problem should name %s:\n%s", ref, msg)
		}
	}
}
