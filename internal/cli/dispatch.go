package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Command is one subcommand of a program whose commands run with an E,
// the environment the program builds for them.
type Command[E any] struct {
	Name    string
	Group   string // heading in the overview
	Summary string // one line
	Usage   string // e.g. "mim migrate [up|status] [--claim ENV]"
	Help    string // paragraphs shown by `help NAME`
	// Setup defines the command's options on fs and returns its runner,
	// which gets the positional arguments left after the options.
	Setup func(fs *flag.FlagSet) func(ctx context.Context, e E, args []string) error
	// NoConfig marks commands that run without a configuration file.
	NoConfig bool
}

// Globals are the options every command accepts, before or after its name.
type Globals struct {
	Config    string
	LogLevel  string
	LogFormat string
}

func (g *Globals) define(fs *flag.FlagSet) {
	fs.StringVar(&g.Config, "config", g.Config, "configuration `file` (default $MIM_CONFIG)")
	fs.StringVar(&g.LogLevel, "log-level", g.LogLevel, "log `level`: debug, info, warn, error (default from the configuration, else info)")
	fs.StringVar(&g.LogFormat, "log-format", g.LogFormat, "log `format`: text or json (default from the configuration, else text)")
}

// Program is a command line: its commands, the texts around their list,
// and how a command's environment is built.
type Program[E any] struct {
	Name     string // the binary's, "mim"
	Version  string // what --version prints after the name
	Intro    string // the overview's text before the commands
	Outro    string // and after them
	Groups   []string
	Commands []Command[E]
	Globals  Globals // their defaults (e.g. Config from $MIM_CONFIG)
	// Start builds the environment c runs with from the global options,
	// args (the whole command line) and the output streams, and what to do
	// once c has run. Its error is printed after the program's name and
	// exits 2.
	Start func(c *Command[E], g Globals, args []string, stdout, stderr io.Writer) (E, func(), error)
}

// Main runs the command line args and returns the exit code.
func (p Program[E]) Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := p.Globals
	top := flag.NewFlagSet(p.Name, flag.ContinueOnError)
	top.SetOutput(io.Discard)
	g.define(top)
	help := top.Bool("help", false, "")
	top.BoolVar(help, "h", false, "")
	version := top.Bool("version", false, "")
	if err := top.Parse(args); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n\n", p.Name, FlagError(err))
		p.printOverview(stderr)
		return ExitUsage
	}
	rest := top.Args()
	switch {
	case *version:
		fmt.Fprintf(stdout, "%s %s\n", p.Name, p.Version)
		return ExitOK
	case *help || len(rest) == 0:
		p.printOverview(stdout)
		if len(rest) == 0 && !*help {
			return ExitUsage
		}
		return ExitOK
	case rest[0] == "help":
		return p.help(rest[1:], stdout, stderr)
	}
	c := p.lookup(rest[0])
	if c == nil {
		fmt.Fprintf(stderr, "%s: unknown command %q%s\n\n", p.Name, rest[0], p.suggest(rest[0]))
		p.printOverview(stderr)
		return ExitUsage
	}
	return p.run(ctx, c, g, args, rest[1:], stdout, stderr)
}

// help is `help [NAME]`.
func (p Program[E]) help(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		p.printOverview(stdout)
		return ExitOK
	}
	if c := p.lookup(args[0]); c != nil {
		p.printCommand(stdout, c)
		return ExitOK
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\n\n", p.Name, args[0])
	p.printOverview(stderr)
	return ExitUsage
}

// run parses c's options among rest and runs it.
func (p Program[E]) run(ctx context.Context, c *Command[E], g Globals, args, rest []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(p.Name+" "+c.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.define(fs)
	run := c.Setup(fs)
	positional, err := ParseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			p.printCommand(stdout, c)
			return ExitOK
		}
		fmt.Fprintf(stderr, "%s %s: %v\n\n", p.Name, c.Name, FlagError(err))
		p.printCommand(stderr, c)
		return ExitUsage
	}
	e, done, err := p.Start(c, g, args, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
		return ExitUsage
	}
	defer done()
	err = run(ctx, e, positional)
	if err != nil {
		fmt.Fprintf(stderr, "%s %s: %v\n", p.Name, c.Name, err)
		var ue *UsageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "\nusage: %s\n(run `%s help %s` for more)\n", c.Usage, p.Name, c.Name)
		}
	}
	return ExitCode(err)
}

func (p Program[E]) lookup(name string) *Command[E] {
	for i := range p.Commands {
		if p.Commands[i].Name == name {
			return &p.Commands[i]
		}
	}
	return nil
}

func (p Program[E]) suggest(name string) string {
	for _, c := range p.Commands {
		if strings.HasPrefix(c.Name, name) || strings.HasPrefix(name, c.Name) {
			return fmt.Sprintf(" (did you mean %q?)", c.Name)
		}
	}
	return ""
}

// printOverview writes the intro, the commands by group (a command of no
// group is under the last), and the outro.
func (p Program[E]) printOverview(w io.Writer) {
	fmt.Fprint(w, p.Intro)
	byGroup := map[string][]Command[E]{}
	for _, c := range p.Commands {
		g := c.Group
		if g == "" && len(p.Groups) > 0 {
			g = p.Groups[len(p.Groups)-1]
		}
		byGroup[g] = append(byGroup[g], c)
	}
	for _, g := range p.Groups {
		cs := byGroup[g]
		if len(cs) == 0 {
			continue
		}
		sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
		fmt.Fprintf(w, "%s:\n", g)
		for _, c := range cs {
			fmt.Fprintf(w, "  %-12s %s\n", c.Name, c.Summary)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, p.Outro)
}

// printCommand writes a command's usage, summary, help, options and the
// global options.
func (p Program[E]) printCommand(w io.Writer, c *Command[E]) {
	fmt.Fprintf(w, "usage: %s\n\n%s\n", c.Usage, c.Summary)
	if c.Help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.Help))
	}
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	c.Setup(fs)
	var own []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { own = append(own, f) })
	if len(own) > 0 {
		fmt.Fprintf(w, "\nOptions:\n")
		PrintOptions(w, fs)
	}
	gfs := flag.NewFlagSet("", flag.ContinueOnError)
	(&Globals{}).define(gfs)
	fmt.Fprintf(w, "\nGlobal options:\n")
	PrintOptions(w, gfs)
}
