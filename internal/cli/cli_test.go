package cli_test

import (
	"context"
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

// A toy program: options anywhere, help, a suggestion for a near name, the
// usage after a usage error, and the exit codes of each.
func TestProgram(t *testing.T) {
	type env struct{ out io.Writer }
	greet := cli.Command[*env]{Name: "greet", Group: "Things", Summary: "say hello", Usage: "toy greet NAME [--loud]",
		Setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
			loud := fs.Bool("loud", false, "shout")
			return func(_ context.Context, e *env, args []string) error {
				if len(args) != 1 {
					return cli.Usagef("say whom")
				}
				if *loud {
					args[0] = strings.ToUpper(args[0])
				}
				fmt.Fprintf(e.out, "hello %s\n", args[0])
				return nil
			}
		}}
	p := cli.Program[*env]{Name: "toy", Version: "1.0", Intro: "toy - a test\n\n", Outro: "bye\n", Groups: []string{"Things"},
		Commands: []cli.Command[*env]{greet},
		Start: func(_ *cli.Command[*env], _ cli.Globals, _ []string, stdout, _ io.Writer) (*env, func(), error) {
			return &env{out: stdout}, func() {}, nil
		}}
	run := func(args ...string) (int, string, string) {
		var out, errb strings.Builder
		code := p.Main(context.Background(), args, &out, &errb)
		return code, out.String(), errb.String()
	}
	for _, c := range []struct {
		args      []string
		code      int
		out, errb string
	}{
		{[]string{"greet", "ann", "--loud"}, 0, "hello ANN\n", ""},
		{[]string{"--version"}, 0, "toy 1.0\n", ""},
		{nil, 2, "toy - a test\n\nThings:\n  greet        say hello\n\nbye\n", ""},
		{[]string{"gree"}, 2, "", `toy: unknown command "gree" (did you mean "greet"?)`},
		{[]string{"greet"}, 2, "", "toy greet: say whom\n\nusage: toy greet NAME [--loud]\n(run `toy help greet` for more)\n"},
		{[]string{"help", "greet"}, 0, "usage: toy greet NAME [--loud]\n\nsay hello\n\nOptions:\n  --loud\n    \tshout\n", ""},
	} {
		code, out, errb := run(c.args...)
		if code != c.code || !strings.HasPrefix(out, c.out) || !strings.HasPrefix(errb, c.errb) {
			t.Errorf("toy %q: exit %d\n%q\n%q", c.args, code, out, errb)
		}
	}
}
