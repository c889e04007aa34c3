package app_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/app"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
)

// mim runs the command line in-process and returns exit code, stdout, stderr.
func mim(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := app.Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mim.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNoArgumentsPrintsHelp(t *testing.T) {
	code, out, _ := mim(t)
	if code != app.ExitUsage {
		t.Errorf("exit %d", code)
	}
	for _, want := range []string{"usage: mim", "migrate", "settings", "status", "Exit codes", "mim help COMMAND"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
	if code, out, _ := mim(t, "help", "settings"); code != 0 || !strings.Contains(out, "mim settings set KEY VALUE") || !strings.Contains(out, "--reason") && !strings.Contains(out, "-reason") {
		t.Errorf("help settings: %d\n%s", code, out)
	}
	if code, out, _ := mim(t, "migrate", "--help"); code != 0 || !strings.Contains(out, "--claim ENV") {
		t.Errorf("migrate --help: %d\n%s", code, out)
	}
	if code, _, errOut := mim(t, "migrat"); code != app.ExitUsage || !strings.Contains(errOut, `did you mean "migrate"`) {
		t.Errorf("unknown command: %d %s", code, errOut)
	}
	if code, out, _ := mim(t, "version"); code != 0 || !strings.HasPrefix(out, "mim ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, out, _ := mim(t, "--version"); code != 0 || !strings.HasPrefix(out, "mim ") {
		t.Errorf("--version: %d %q", code, out)
	}
	// Options are written as the usage lines write them: --entity.
	code, out, _ = mim(t, "help", "extract")
	if code != 0 || !strings.Contains(out, "\n  --entity ENTITY\n") || strings.Contains(out, "\n  -entity") {
		t.Errorf("help extract writes its options:\n%s", out)
	}
	if code, _, errOut := mim(t, "status", "--bogus"); code != app.ExitUsage || !strings.Contains(errOut, "unknown option --bogus") {
		t.Errorf("status --bogus: %d %s", code, errOut)
	}
}

func TestBadConfigListsEveryProblemOnce(t *testing.T) {
	p := writeConfig(t, "environment: Prod\nwarehouse: {dsn: nowhere, max_conns: 0.5}\nmoodle:\n  - {name: main, url: ftp://x, token: t}\n")
	code, _, errOut := mim(t, "--config", p, "status")
	if code != app.ExitUsage {
		t.Errorf("exit %d, want 2", code)
	}
	for _, want := range []string{"has 5 problems", "environment (line 1)", "warehouse.dsn (line 2)", "warehouse.max_conns (line 2): invalid whole number",
		"moodle[0].url (line 4)", "moodle[0].environment: required"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("error lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Count(errOut, "has 5 problems") != 1 {
		t.Errorf("problems printed more than once:\n%s", errOut)
	}
	if code, _, errOut := mim(t, "status"); code != app.ExitUsage || !strings.Contains(errOut, "no configuration") {
		t.Errorf("no config: %d %s", code, errOut)
	}
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	if code, _, errOut := mim(t, "--config", missing, "status"); code != app.ExitUsage || !strings.Contains(errOut, missing+": cannot be read: no such file") {
		t.Errorf("a missing configuration file: %d %s", code, errOut)
	}
}

func TestMigrateStatusSettingsAgainstARealWarehouse(t *testing.T) {
	db := pgtest.NewEmpty(t)
	cfg := writeConfig(t, "environment: staging\nwarehouse: {dsn: \""+db.DSN.Reveal()+"\"}\n")

	code, out, errOut := mim(t, "migrate", "--config", cfg)
	if code != 0 || !strings.Contains(out, "applied 00001") || !strings.Contains(out, `labelled as environment "staging"`) {
		t.Fatalf("first migrate: %d\n%s%s", code, out, errOut)
	}
	code, out, _ = mim(t, "--config", cfg, "migrate")
	if code != 0 || !strings.Contains(out, "nothing to apply") || strings.Contains(out, "applied") {
		t.Fatalf("second migrate is not a no-op: %d\n%s", code, out)
	}
	code, out, _ = mim(t, "--config", cfg, "migrate", "status")
	if code != 0 || !strings.Contains(out, "00001_schemas_and_control.sql") || strings.Contains(out, "pending") {
		t.Errorf("migrate status: %d\n%s", code, out)
	}

	if code, out, errOut = mim(t, "--config", cfg, "settings", "set", "threshold_percent", "80", "--reason", "test"); code != 0 || !strings.Contains(out, `"75" -> "80"`) {
		t.Errorf("settings set: %d %s %s", code, out, errOut)
	}
	if code, _, errOut = mim(t, "--config", cfg, "settings", "set", "threshold_percent", "180"); code != app.ExitUsage || !strings.Contains(errOut, "0 to 100") {
		t.Errorf("invalid setting: %d %s", code, errOut)
	}
	// A negative value is a value, not an option, and is judged as one.
	for _, args := range [][]string{{"settings", "set", "threshold_percent", "-5"}, {"settings", "set", "--reason", "x", "threshold_percent", "-5"},
		{"settings", "set", "threshold_percent", "-5", "--reason", "x"}} {
		if code, _, errOut = mim(t, append([]string{"--config", cfg}, args...)...); code != app.ExitUsage || !strings.Contains(errOut, "0 to 100") {
			t.Errorf("%v: %d %s", args, code, errOut)
		}
	}
	// ... and the value of an option that takes one stays its value.
	if code, out, errOut = mim(t, "--config", cfg, "settings", "set", "threshold_percent", "80", "--reason", "-5"); code != 0 || !strings.Contains(out, `"80" -> "80"`) {
		t.Errorf("--reason -5: %d %s %s", code, out, errOut)
	}
	if code, out, _ = mim(t, "--config", cfg, "settings", "list"); code != 0 || !strings.Contains(out, "threshold_percent") || !strings.Contains(out, "80") {
		t.Errorf("settings list: %d\n%s", code, out)
	}

	// A run in the ledger shows up in status.
	r, err := ledger.Begin(context.Background(), db.Pool, "extract", "staging", "v", []string{"extract"})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.Step(context.Background(), ledger.StepKey{Stage: "extract", Source: "sits", Entity: "student"})
	s.Finish(context.Background(), ledger.Succeeded, ledger.Counts{In: 42, New: 42}, nil, nil)
	r.Finish(context.Background(), ledger.Succeeded, 0, nil)
	code, out, _ = mim(t, "--config", cfg, "status")
	if code != 0 || !strings.Contains(out, "run 1 by stage") || !strings.Contains(out, "1 succeeded") || strings.Contains(out, "extract/sits/student") || !strings.Contains(out, "42") {
		t.Errorf("status: %d\n%s", code, out)
	}
	code, out, _ = mim(t, "--config", cfg, "status", "--steps")
	if code != 0 || !strings.Contains(out, "extract/sits/student") || !strings.Contains(out, "42") {
		t.Errorf("status --steps: %d\n%s", code, out)
	}

	// The same database used by a production deployment: it says so, and a
	// claim for another environment than the configuration's is refused.
	prod := writeConfig(t, "environment: production\nwarehouse: {dsn: \""+db.DSN.Reveal()+"\"}\n")
	code, out, _ = mim(t, "--config", prod, "migrate")
	if code != 0 || !strings.Contains(out, `belongs to environment "staging"`) {
		t.Errorf("migrate from another environment: %d\n%s", code, out)
	}
	if code, _, errOut = mim(t, "--config", prod, "migrate", "--claim", "staging"); code != app.ExitUsage {
		t.Errorf("claim for another environment: %d %s", code, errOut)
	}
	code, out, _ = mim(t, "--config", prod, "migrate", "--claim", "production")
	if code != 0 || !strings.Contains(out, `claimed for environment "production" (it was "staging")`) {
		t.Errorf("claim: %d\n%s", code, out)
	}
	code, out, _ = mim(t, "--config", prod, "check")
	if code != 0 || !strings.Contains(out, `labelled "production"`) {
		t.Errorf("check: %d\n%s", code, out)
	}
	code, out, _ = mim(t, "--config", cfg, "check")
	if code != 1 || !strings.Contains(out, "FAIL") {
		t.Errorf("check from the wrong environment should fail: %d\n%s", code, out)
	}
}

// `mim help bench` and the README give the bench the same durations.
func TestBenchDurationsAgreeWithTheREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, help, _ := mim(t, "help", "bench")
	for _, d := range []string{"small: " + app.BenchSmallTime, "4 sites at 20 ms: " + app.BenchUCLTime} {
		if !strings.Contains(string(readme), d) || !strings.Contains(strings.Join(strings.Fields(help), " "), d) {
			t.Errorf("%q is not in both the README and mim help bench:\n%s", d, help)
		}
	}
}

// Every command is listed once, and a program runs the checks it is given,
// in their order, and no others.
func TestProgramRunsItsOwnLists(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range app.Commands() {
		if seen[c.Name] || c.Setup == nil || c.Summary == "" {
			t.Errorf("command %q is listed twice or lacks a summary or setup", c.Name)
		}
		seen[c.Name] = true
	}
	check := func(name string, ok bool) app.Check {
		return app.Check{Name: name, Run: func(context.Context, *app.Env) []app.CheckResult {
			return []app.CheckResult{{Target: name, OK: ok, Detail: "fixture"}}
		}}
	}
	p := app.Default()
	p.Checks = []app.Check{check("second-listed-first", true), check("failing", false)}
	cfg := writeConfig(t, "environment: test\nwarehouse: {dsn: \"postgres://nowhere.invalid/mim\"}\n")
	var out, errb bytes.Buffer
	code := p.Main(context.Background(), []string{"--config", cfg, "check"}, &out, &errb)
	want := "ok    second-listed-first  fixture\nFAIL  failing              fixture\n"
	if code != app.ExitFailure || out.String() != want {
		t.Errorf("check with its own list: exit %d\n%q\nwant\n%q\n%s", code, out.String(), want, errb.String())
	}
}
