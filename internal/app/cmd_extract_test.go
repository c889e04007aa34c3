package app_test

import (
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/app"
)

// The command's own part: its help, its arguments, and the night's usage
// errors shown as this command's (exit 2 with the usage).
func TestExtractCommandLine(t *testing.T) {
	cfg := writeConfig(t, "environment: test\nwarehouse: {dsn: \"postgres://mim@127.0.0.1:1/none\"}\nmoodle:\n"+
		"  - {name: alpha, url: https://alpha.example.ac.uk, token: t1, environment: test}\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--source", "sits"}, `--source "sits" is not a configured source (configured: moodle:alpha)`},
		{[]string{"--progress", "loud"}, `--progress "loud"`},
		{[]string{"now"}, "extract takes no arguments"},
	} {
		code, _, errOut := mim(t, append([]string{"--config", cfg, "extract"}, c.args...)...)
		if code != app.ExitUsage || !strings.Contains(errOut, c.want) || !strings.Contains(errOut, "usage: mim extract") {
			t.Errorf("extract %v: exit %d, want 2 and %q:\n%s", c.args, code, c.want, errOut)
		}
	}
	code, out, _ := mim(t, "help", "extract")
	for _, want := range []string{"mim extract [--source NAME]", "-entity", "-progress", "keeps every row", "moodle:main/users"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
}
