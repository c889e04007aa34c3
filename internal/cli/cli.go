// Package cli is the command-line plumbing of mim that knows nothing of
// MIM's stages: usage errors and exit codes, options written --name and
// parsed wherever they appear among the arguments, option listings, the
// logger --log-level and --log-format ask for, the operator's name and
// the build's version.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
	ExitRefused = 3
)

// UsageError is a mistake on the command line (exit 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// ExitCode makes a usage error exit 2.
func (e *UsageError) ExitCode() int { return ExitUsage }

// Usagef returns a *UsageError.
func Usagef(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

// ExitCode maps an error to the process exit code: an error (or one it
// wraps) with an ExitCode method decides; anything else is a failure.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return ExitFailure
}

// Who names the operator for ledgers and history: user@host.
func Who() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

// Version is the version this binary reports: set, else the VCS revision
// it was built from, else the module version, else "dev".
func Version(set string) string {
	if set != "" {
		return set
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if dirty {
				rev += "-dirty"
			}
			return "dev-" + rev
		}
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
	}
	return "dev"
}

// ParseInterspersed parses flags wherever they appear among the positional
// arguments (operators write `settings set K V --reason R`); everything after
// a "--" is positional, and so is a negative number that is not an option's
// value (`settings set threshold_percent -5`).
func ParseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if n := negativeAt(fs, args); n >= 0 {
			rest, err := ParseInterspersed(fs, args[:n])
			if err != nil {
				return nil, err
			}
			positional = append(append(positional, rest...), args[n])
			args = args[n+1:]
			continue
		}
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

var negativeNumber = regexp.MustCompile(`^-[0-9][0-9.]*$`)

// negativeAt is the index of the first argument that is a negative number
// and not the value of the option before it (-1 if none), up to a "--".
func negativeAt(fs *flag.FlagSet, args []string) int {
	for i, a := range args {
		if a == "--" {
			return -1
		}
		if !negativeNumber.MatchString(a) || fs.Lookup(a[1:]) != nil {
			continue
		}
		if i > 0 && takesValue(fs, args[i-1]) {
			continue
		}
		return i
	}
	return -1
}

// takesValue says whether arg is an option whose value is the next argument.
func takesValue(fs *flag.FlagSet, arg string) bool {
	if !strings.HasPrefix(arg, "-") || strings.Contains(arg, "=") {
		return false
	}
	f := fs.Lookup(strings.TrimLeft(arg, "-"))
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// FlagError rewords the flag package's errors with the option names as
// MIM writes them (--entity, not -entity).
func FlagError(err error) error {
	msg := err.Error()
	for _, p := range []struct{ from, to string }{
		{"flag provided but not defined: -", "unknown option --"},
		{"flag needs an argument: -", "option needs a value: --"},
		{"invalid value ", "invalid value "},
		{"invalid boolean value ", "invalid boolean value "},
	} {
		if strings.HasPrefix(msg, p.from) {
			msg = p.to + strings.TrimPrefix(msg, p.from)
			break
		}
	}
	msg = strings.ReplaceAll(msg, " for flag -", " for option --")
	return errors.New(msg)
}

// PrintOptions lists a flag set's options as MIM writes them: --name VALUE,
// then the usage, indented (the flag package writes -name).
func PrintOptions(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintln(w, line)
		if def := f.DefValue; def != "" && def != "false" && def != "0" && def != "0s" && def != "[]" {
			if fmt.Sprintf("%T", f.Value) == "*flag.stringValue" {
				def = strconv.Quote(def)
			}
			usage += " (default " + def + ")"
		}
		fmt.Fprintf(w, "    \t%s\n", strings.ReplaceAll(usage, "\n", "\n    \t"))
	})
}

// NewLogger is the logger --log-level and --log-format ask for (default
// info, text), writing to w.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	switch level {
	case "", "info":
		l = slog.LevelInfo
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		return nil, Usagef("--log-level %q is not one of debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, Usagef("--log-format %q is not text or json", format)
}
