package cli_test

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/cli"
)

// Options go anywhere among the arguments; a negative number is a value
// unless it is an option's; everything after "--" is positional.
func TestParseInterspersed(t *testing.T) {
	for _, c := range []struct {
		args       []string
		positional []string
		reason     string
		dry        bool
	}{
		{[]string{"set", "k", "v", "--reason", "r"}, []string{"set", "k", "v"}, "r", false},
		{[]string{"--dry-run", "set", "k", "-5"}, []string{"set", "k", "-5"}, "", true},
		{[]string{"set", "k", "-5", "--reason", "-5"}, []string{"set", "k", "-5"}, "-5", false},
		{[]string{"set", "--", "--reason", "x"}, []string{"set", "--reason", "x"}, "", false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		reason := fs.String("reason", "", "")
		dry := fs.Bool("dry-run", false, "")
		got, err := cli.ParseInterspersed(fs, c.args)
		if err != nil || !slices.Equal(got, c.positional) || *reason != c.reason || *dry != c.dry {
			t.Errorf("%q: %q reason %q dry %v (%v)", c.args, got, *reason, *dry, err)
		}
	}
}

func TestFlagErrorAndExitCode(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	_, err := cli.ParseInterspersed(fs, []string{"--bogus"})
	if got := cli.FlagError(err).Error(); got != "unknown option --bogus" {
		t.Errorf("FlagError: %q", got)
	}
	for err, want := range map[error]int{nil: cli.ExitOK, errors.New("x"): cli.ExitFailure,
		fmt.Errorf("wrapped: %w", cli.Usagef("bad")): cli.ExitUsage} {
		if got := cli.ExitCode(err); got != want {
			t.Errorf("ExitCode(%v) = %d, want %d", err, got, want)
		}
	}
	var b strings.Builder
	fs.String("entity", "", "read only `ENTITY`")
	cli.PrintOptions(&b, fs)
	if b.String() != "  --entity ENTITY\n    \tread only ENTITY\n" {
		t.Errorf("PrintOptions: %q", b.String())
	}
}
