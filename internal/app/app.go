// Package app is the plumbing of the mim command: the command registry,
// global flags, configuration and warehouse access shared by every command,
// help text, and the mapping from errors to exit codes (0 ok, 1 failure,
// 2 usage or configuration, 3 refused by a guard). Each command lives in its
// own cmd_*.go file; Commands lists them all.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/cli"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/observe"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Version is set at build time with -ldflags "-X github.com/mimwarehouse/mim/internal/app.Version=...".
var Version = ""

// Exit codes.
const (
	ExitOK      = cli.ExitOK
	ExitFailure = cli.ExitFailure
	ExitUsage   = cli.ExitUsage
	ExitRefused = cli.ExitRefused
)

// Runner runs a command once its flags are parsed; args are the positional
// arguments left after the flags.
type Runner func(ctx context.Context, e *Env, args []string) error

// Command is one `mim` subcommand.
type Command struct {
	Name    string
	Group   string // heading in `mim help`
	Summary string // one line
	Usage   string // e.g. "mim migrate [up|status] [--claim ENV]"
	Help    string // paragraphs shown by `mim help NAME`
	// Setup defines the command's flags on fs and returns its runner.
	Setup func(fs *flag.FlagSet) Runner
	// NoConfig marks commands that run without a configuration file.
	NoConfig bool
}

// Commands is every mim command, in one list: `mim help` and the dispatcher
// read it through a Program.
func Commands() []Command {
	return []Command{
		// Pipeline
		runCommand, extractCommand, transformCommand,
		// Feeds and Moodle
		exportCommand, groupsCommand,
		// Warehouse
		migrateCommand, settingsCommand, mappingsCommand, rolloverCommand, synthCommand,
		// Operations
		statusCommand, checkCommand, serveCommand, pauseCommand, resumeCommand, catalogCommand,
		ltiCommand, demoCommand, drillCommand, benchCommand,
		// Other
		versionCommand,
	}
}

// Program is what a mim binary is made of: its commands, the checks `mim
// check` dials and the source kinds `mim extract` and `mim run` can open.
// Main runs Default(); a test builds its own.
type Program struct {
	Commands []Command
	Checks   []Check
	Sources  map[string]SourceOpener
}

// Default is the program this binary ships: Commands, Checks and Sources.
func Default() Program {
	return Program{Commands: Commands(), Checks: Checks(), Sources: Sources()}
}

// UsageError is a mistake on the command line (exit 2).
type UsageError = cli.UsageError

// Usagef returns a *UsageError.
func Usagef(format string, args ...any) error { return cli.Usagef(format, args...) }

// ExitCode maps an error to the process exit code (see cli.ExitCode).
func ExitCode(err error) int { return cli.ExitCode(err) }

// Env is what a running command gets: its output streams, the global
// options, and lazily loaded configuration and warehouse connection.
type Env struct {
	Stdout, Stderr io.Writer
	Logger         *slog.Logger
	ConfigPath     string
	Args           []string // the command line after the program name, for the ledger

	cfg    *config.Config
	cfgErr error
	loaded bool
	pool   *pgxpool.Pool
	// LoadConfig is how Config obtains the configuration; tests and `mim demo`
	// replace it with one built in memory.
	LoadConfig func() (*config.Config, error)
	// Metrics, when set (mim serve, mim demo), are this process's live
	// collectors; the Moodle clients built by MoodleClient count their calls
	// in it as they happen.
	Metrics *observe.Metrics
	// Requests adds up every Moodle call this process makes, until a run
	// records them in the ledger (saveRequests), whichever command it is.
	Requests *observe.Tally
	// Sources are the source kinds this command may open (nil: Sources()).
	Sources map[string]SourceOpener
	// Checks are what `mim check` dials (nil: Checks()).
	Checks []Check
}

// Config loads the configuration once; a configuration with problems is an
// error every time it is asked for.
func (e *Env) Config() (*config.Config, error) {
	if !e.loaded {
		e.cfg, e.cfgErr = e.LoadConfig()
		e.loaded = true
	}
	if e.cfgErr != nil {
		return nil, e.cfgErr
	}
	return e.cfg, nil
}

// SetConfig installs a configuration built in memory (used by `mim demo`).
func (e *Env) SetConfig(c *config.Config) { e.cfg, e.cfgErr, e.loaded = c, nil, true }

// Warehouse connects to the configured warehouse once.
func (e *Env) Warehouse(ctx context.Context) (*pgxpool.Pool, error) {
	if e.pool != nil {
		return e.pool, nil
	}
	cfg, err := e.Config()
	if err != nil {
		return nil, err
	}
	e.pool, err = warehouse.Open(ctx, cfg.Warehouse.DSN, cfg.Warehouse.MaxConns)
	return e.pool, err
}

// beginRun opens the configuration and the warehouse and records a run
// of cmd in the ledger, as the commands that change the warehouse do.
func beginRun(ctx context.Context, e *Env, cmd string) (*config.Config, *pgxpool.Pool, *ledger.Run, error) {
	cfg, err := e.Config()
	if err != nil {
		return nil, nil, nil, err
	}
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	run, err := ledger.Begin(ctx, pool, cmd, cfg.Environment, VersionString(), e.Args)
	return cfg, pool, run, err
}

// Close releases what the command opened.
func (e *Env) Close() {
	if e.pool != nil {
		e.pool.Close()
		e.pool = nil
	}
}

// Who names the operator for ledgers and history: user@host.
func Who() string { return cli.Who() }

// VersionString is the version this binary reports (Version when set).
func VersionString() string { return cli.Version(Version) }

// globals are the options every command accepts, before or after its name.
type globals struct {
	config    string
	logLevel  string
	logFormat string
}

func (g *globals) define(fs *flag.FlagSet) {
	fs.StringVar(&g.config, "config", g.config, "configuration `file` (default $MIM_CONFIG)")
	fs.StringVar(&g.logLevel, "log-level", g.logLevel, "log `level`: debug, info, warn, error (default from the configuration, else info)")
	fs.StringVar(&g.logFormat, "log-format", g.logFormat, "log `format`: text or json (default from the configuration, else text)")
}

// Main runs the mim command line of the Default program and returns the
// exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return Default().Main(ctx, args, stdout, stderr)
}

// Main runs the mim command line with p's commands, checks and sources and
// returns the exit code.
func (p Program) Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{config: os.Getenv("MIM_CONFIG")}
	top := flag.NewFlagSet("mim", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	g.define(top)
	help := top.Bool("help", false, "")
	top.BoolVar(help, "h", false, "")
	version := top.Bool("version", false, "")
	if err := top.Parse(args); err != nil {
		fmt.Fprintf(stderr, "mim: %v\n\n", cli.FlagError(err))
		printOverview(stderr, p.Commands)
		return ExitUsage
	}
	rest := top.Args()
	if *version {
		fmt.Fprintf(stdout, "mim %s\n", VersionString())
		return ExitOK
	}
	if *help || len(rest) == 0 {
		printOverview(stdout, p.Commands)
		if len(rest) == 0 && !*help {
			return ExitUsage
		}
		return ExitOK
	}
	name := rest[0]
	if name == "help" {
		if len(rest) > 1 {
			if c := lookup(p.Commands, rest[1]); c != nil {
				printCommand(stdout, c)
				return ExitOK
			}
			fmt.Fprintf(stderr, "mim: unknown command %q\n\n", rest[1])
			printOverview(stderr, p.Commands)
			return ExitUsage
		}
		printOverview(stdout, p.Commands)
		return ExitOK
	}
	c := lookup(p.Commands, name)
	if c == nil {
		fmt.Fprintf(stderr, "mim: unknown command %q%s\n\n", name, suggest(p.Commands, name))
		printOverview(stderr, p.Commands)
		return ExitUsage
	}
	fs := flag.NewFlagSet("mim "+c.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.define(fs)
	run := c.Setup(fs)
	positional, err := cli.ParseInterspersed(fs, rest[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommand(stdout, c)
			return ExitOK
		}
		fmt.Fprintf(stderr, "mim %s: %v\n\n", c.Name, cli.FlagError(err))
		printCommand(stderr, c)
		return ExitUsage
	}
	e := &Env{Stdout: stdout, Stderr: stderr, ConfigPath: g.config, Args: args, Sources: p.Sources, Checks: p.Checks}
	e.LoadConfig = func() (*config.Config, error) {
		if e.ConfigPath == "" {
			return nil, Usagef("no configuration: pass --config FILE or set MIM_CONFIG (see mim.example.yaml)")
		}
		return config.Load(e.ConfigPath)
	}
	// Configure logging from the configuration when there is one; a bad
	// configuration is reported by the command that needs it.
	level, format := g.logLevel, g.logFormat
	if !c.NoConfig && g.config != "" {
		if cfg, err := e.Config(); err == nil {
			if level == "" {
				level = cfg.Log.Level
			}
			if format == "" {
				format = cfg.Log.Format
			}
		}
	}
	logger, lerr := cli.NewLogger(stderr, level, format)
	err = lerr
	if err != nil {
		fmt.Fprintf(stderr, "mim: %v\n", err)
		return ExitUsage
	}
	e.Logger = logger
	defer e.Close()
	defer startProfiles(c.Name)()
	err = run(ctx, e, positional)
	code := ExitCode(err)
	if err != nil {
		fmt.Fprintf(stderr, "mim %s: %v\n", c.Name, err)
		var ue *UsageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "\nusage: %s\n(run `mim help %s` for more)\n", c.Usage, c.Name)
		}
	}
	return code
}

func lookup(cmds []Command, name string) *Command {
	for i := range cmds {
		if cmds[i].Name == name {
			return &cmds[i]
		}
	}
	return nil
}

func suggest(cmds []Command, name string) string {
	for _, c := range cmds {
		if strings.HasPrefix(c.Name, name) || strings.HasPrefix(name, c.Name) {
			return fmt.Sprintf(" (did you mean %q?)", c.Name)
		}
	}
	return ""
}

// groupOrder is the order of headings in `mim help`.
var groupOrder = []string{"Pipeline", "Feeds and Moodle", "Warehouse", "Operations", "Other"}

func printOverview(w io.Writer, cmds []Command) {
	fmt.Fprint(w, `mim - the Moodle integration warehouse

MIM extracts SITS, CMIS and every configured Moodle site into a PostgreSQL
warehouse, transforms them with SQL, and feeds Moodle back (IMS Enterprise,
profile fields, tutor table, merge list, timetable groups), refusing anything
that would silently drop students or delete groups.

usage: mim [--config FILE] COMMAND [options] [arguments]
       mim --version

`)
	byGroup := map[string][]Command{}
	for _, c := range cmds {
		g := c.Group
		if g == "" {
			g = "Other"
		}
		byGroup[g] = append(byGroup[g], c)
	}
	for _, g := range groupOrder {
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
	fmt.Fprint(w, `Global options (before or after the command):
  --config FILE      configuration file (default $MIM_CONFIG; see mim.example.yaml)
  --log-level LEVEL  debug, info, warn or error
  --log-format FMT   text or json

Exit codes: 0 ok, 1 failure, 2 usage or configuration error,
            3 refused by a guard (threshold, environment, delete budget).

Run 'mim help COMMAND' for a command's options.
`)
}

func printCommand(w io.Writer, c *Command) {
	fmt.Fprintf(w, "usage: %s\n\n%s\n", c.Usage, c.Summary)
	if c.Help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.Help))
	}
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	g := &globals{}
	c.Setup(fs)
	var own []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { own = append(own, f) })
	if len(own) > 0 {
		fmt.Fprintf(w, "\nOptions:\n")
		cli.PrintOptions(w, fs)
	}
	gfs := flag.NewFlagSet("", flag.ContinueOnError)
	g.define(gfs)
	fmt.Fprintf(w, "\nGlobal options:\n")
	cli.PrintOptions(w, gfs)
}
