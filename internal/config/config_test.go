package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
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
	t.Setenv("MOODLE_ARCHIVE_DB_DSN", "postgres://mim_reader:pw@replica.example.ac.uk/moodle")
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
	if main.Kind != KindMoodle || cfg.Moodle[1].Kind != KindMoodleDB || cfg.Moodle[1].Database.MaxLag != 30*time.Minute {
		t.Errorf("kinds: main %q, archive %q %+v", main.Kind, cfg.Moodle[1].Kind, cfg.Moodle[1].Database)
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

// secrets_file supplies the ${NAME}s the environment does not set, from a
// file only its owner can read.
func TestSecretsFile(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "mim.yaml")
	write := func(name, body string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("mim.yaml", "environment: test\nsecrets_file: mim.secrets\nwarehouse: {dsn: \"${MIM_T_DSN}\"}\n"+
		"moodle:\n  - {name: main, url: \"https://m.example.ac.uk\", token: \"${MIM_T_TOKEN}\", environment: test}\n", 0o644)
	write("mim.secrets", "# the demo's\nMIM_T_DSN='postgres://mim:s3cret@h/db'\n\nMIM_T_TOKEN=tok123\n", 0o600)
	cfg, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Warehouse.DSN.Reveal() != "postgres://mim:s3cret@h/db" || cfg.Moodle[0].Token.Reveal() != "tok123" {
		t.Errorf("dsn %s token %s", cfg.Warehouse.DSN, cfg.Moodle[0].Token)
	}
	t.Setenv("MIM_T_TOKEN", "from-env")
	if cfg, err = Load(cfgPath); err != nil || cfg.Moodle[0].Token.Reveal() != "from-env" {
		t.Errorf("the environment does not win: %v", err)
	}
	write("mim.secrets", "MIM_T_DSN=x\nMIM_T_TOKEN=tok123\n", 0o644)
	if _, err = Load(cfgPath); err == nil || !strings.Contains(err.Error(), "chmod 600") || ExitCodeOf(err) != 2 {
		t.Errorf("a secrets file others can read: %v", err)
	}
	write("mim.secrets", "MIM_T_DSN=x\nthis line holds tok123\n", 0o600)
	if _, err = Load(cfgPath); err == nil || !strings.Contains(err.Error(), "line 2 is not NAME=value") || strings.Contains(err.Error(), "tok123") {
		t.Errorf("a bad line: %v", err)
	}
}

// ExitCodeOf is the exit code an error asks for (0 if none).
func ExitCodeOf(err error) int {
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 0
}

// A site read from its database needs the connection, and says what is
// wrong with it; the defaults are Moodle's prefix and a 30-minute lag.
func TestMoodleDatabaseSite(t *testing.T) {
	const site = `
environment: test
moodle:
  - name: main
    url: https://moodle.example.ac.uk
    token: t
    environment: test
    kind: %s
`
	cfg, err := Parse([]byte(fmt.Sprintf(site, "moodle-db")+`    database: {driver: mysql, dsn: "reader:pw@tcp(db:3306)/moodle"}
`), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Moodle[0].Database
	if d.Prefix != "mdl_" || d.MaxLag != 30*time.Minute || d.Timeout != 10*time.Minute {
		t.Errorf("defaults: prefix %q, max_lag %v, timeout %v", d.Prefix, d.MaxLag, d.Timeout)
	}
	if s := fmt.Sprint(d.DSN); strings.Contains(s, "pw") {
		t.Errorf("the DSN prints its password: %s", s)
	}
	for _, c := range []struct{ kind, db, want string }{
		{"moodle-db", "", "moodle[0].database: required with kind: moodle-db"},
		{"moodle-db", "    database: {driver: oracle, dsn: x, prefix: Mdl-, max_lag: 10s}\n",
			`moodle[0].database.driver (line 9): "oracle" is not supported`},
		{"moodle-db", "    database: {driver: pgx, dsn: x, prefix: Mdl-}\n", `moodle[0].database.prefix (line 9): "Mdl-" is not a table prefix`},
		{"moodle-db", "    database: {driver: pgx, dsn: x, max_lag: 10s}\n", "moodle[0].database.max_lag (line 9): must be at least 1m"},
		{"moodle", "    database: {driver: pgx, dsn: x}\n", "moodle[0].database (line 9): is read only with kind: moodle-db"},
		{"soap", "", `moodle[0].kind (line 8): "soap" is not a way to read a site`},
	} {
		_, err := Parse([]byte(fmt.Sprintf(site, c.kind)+c.db), envOf(nil))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("kind %s, %q: error %v, want it to mention %q", c.kind, c.db, err, c.want)
		}
	}
}
