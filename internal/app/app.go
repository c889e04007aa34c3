// Package app is the plumbing of the mim command: the command registry,
// global flags, configuration and warehouse access shared by every command,
// help text, and the mapping from errors to exit codes (0 ok, 1 failure,
// 2 usage or configuration, 3 refused by a guard). Each command lives in its
// own cmd_*.go file; Commands lists them all.
package app

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/cli"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/night"
	"github.com/mimwarehouse/mim/internal/observe"
	"github.com/mimwarehouse/mim/internal/profiling"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/moodle"
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
type Runner = func(ctx context.Context, e *Env, args []string) error

// Command is one `mim` subcommand: its name, group, summary, usage, help,
// and Setup, which defines its options and returns its Runner.
type Command = cli.Command[*Env]

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
	Sources  night.Sources
}

// Default is the program this binary ships: Commands, Checks and the
// built-in source kinds.
func Default() Program {
	return Program{Commands: Commands(), Checks: Checks(), Sources: night.Builtin()}
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
	// Sources are the source kinds this command may open (nil:
	// night.Builtin()).
	Sources night.Sources
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

// Main runs the mim command line of the Default program and returns the
// exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return Default().Main(ctx, args, stdout, stderr)
}

// Main runs the mim command line with p's commands, checks and sources and
// returns the exit code.
func (p Program) Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Program[*Env]{Name: "mim", Version: VersionString(), Intro: overviewIntro, Outro: overviewOutro, Groups: groupOrder,
		Commands: p.Commands, Globals: cli.Globals{Config: os.Getenv("MIM_CONFIG")}, Start: p.start}.Main(ctx, args, stdout, stderr)
}

// start builds the Env command c runs with: the configuration loaded when
// first asked for, the logger the options or else the configuration ask
// for (a bad configuration is reported by the command that needs it), and
// profiles when asked; done closes what the command opened.
func (p Program) start(c *Command, g cli.Globals, args []string, stdout, stderr io.Writer) (e *Env, done func(), err error) {
	e = &Env{Stdout: stdout, Stderr: stderr, ConfigPath: g.Config, Args: args, Sources: p.Sources, Checks: p.Checks}
	e.LoadConfig = func() (*config.Config, error) {
		if e.ConfigPath == "" {
			return nil, Usagef("no configuration: pass --config FILE or set MIM_CONFIG (see mim.example.yaml)")
		}
		return config.Load(e.ConfigPath)
	}
	level, format := g.LogLevel, g.LogFormat
	if !c.NoConfig && g.Config != "" {
		if cfg, err := e.Config(); err == nil {
			level, format = cmp.Or(level, cfg.Log.Level), cmp.Or(format, cfg.Log.Format)
		}
	}
	if e.Logger, err = cli.NewLogger(stderr, level, format); err != nil {
		return nil, nil, err
	}
	stop := profiling.Start(c.Name)
	return e, func() { stop(); e.Close() }, nil
}

// groupOrder is the order of headings in `mim help`.
var groupOrder = []string{"Pipeline", "Feeds and Moodle", "Warehouse", "Operations", "Other"}

const overviewIntro = `mim - the Moodle integration warehouse

MIM extracts SITS, CMIS and every configured Moodle site into a PostgreSQL
warehouse, transforms them with SQL, and feeds Moodle back (IMS Enterprise,
profile fields, tutor table, merge list, timetable groups), refusing anything
that would silently drop students or delete groups.

usage: mim [--config FILE] COMMAND [options] [arguments]
       mim --version

`

const overviewOutro = `Global options (before or after the command):
  --config FILE      configuration file (default $MIM_CONFIG; see mim.example.yaml)
  --log-level LEVEL  debug, info, warn or error
  --log-format FMT   text or json

Exit codes: 0 ok, 1 failure, 2 usage or configuration error,
            3 refused by a guard (threshold, environment, delete budget).

Run 'mim help COMMAND' for a command's options.
`

// MoodleClient builds the web-service client for a configured site
// (wire.MoodleOptions, logging to e.Logger), counting its calls where
// e's calls are counted: the tally the ledger gets at the end of a run,
// and the live metrics when there are. Every command that talks to Moodle
// builds its clients here, so all treat a site alike; opts are applied last.
func MoodleClient(e *Env, site *config.MoodleSite, opts ...moodle.Option) (*moodle.Client, error) {
	if e.Requests == nil {
		e.Requests = observe.NewTally()
	}
	var counted moodle.Observer = e.Requests
	if e.Metrics != nil {
		counted = observe.Observers{e.Requests, e.Metrics}
	}
	base := append(wire.MoodleOptions(site, e.Logger), moodle.WithObserver(counted))
	return moodle.New(site.Name, site.URL, site.Token.Reveal(), append(base, opts...)...)
}

// saveRequests records the Moodle calls made since the last save under run.
// A failure is logged: the run's own work stands.
func saveRequests(ctx context.Context, e *Env, q observe.Execer, runID int64) {
	if e.Requests == nil {
		return
	}
	if err := observe.SaveRequests(context.WithoutCancel(ctx), q, runID, e.Requests.Drain()); err != nil && e.Logger != nil {
		e.Logger.Warn("recording the run's Moodle calls", "run_id", runID, "error", err)
	}
}
