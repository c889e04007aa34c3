// Package night builds a MIM run from the configuration: it is the
// composition root of `mim run` (and of `mim extract`, `mim transform` and
// `mim export`, which are single stages of it). It chooses and opens the
// sources, runs them into the loader, and builds the stage graph the
// generic runner of internal/pipeline executes: extract, transform,
// export, group sync and catalog for the nightly cycle; SIS extraction,
// transform and the enrolment delta for the intraday cycle.
//
// Every stage returns a structured value (an *ExtractOutcome, a
// *TransformResult, an *ExportResult, a *GroupsResult), carried in the
// pipeline's Report; the lines of the run's summary are written from those
// values, never printed and read back. internal/app keeps the flags, the
// help and the printing.
package night

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/catalog"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/moodle"
)

// Exit codes a night's errors carry (the same as the mim command's).
const (
	exitFailure = 1
	exitUsage   = 2
	exitRefused = 3
)

// Env is what a night is built from. internal/app fills it from the
// command line, the configuration and the process.
type Env struct {
	// Config is the loaded configuration.
	Config *config.Config
	// Warehouse connects to the warehouse (once: it is the caller's pool).
	Warehouse func(ctx context.Context) (*pgxpool.Pool, error)
	// Logger receives the stages' logs (nil: discarded).
	Logger *slog.Logger
	// Stderr is where an extract's progress bars go.
	Stderr io.Writer
	// Operator names who runs it, for the ledger and history (user@host).
	Operator string
	// Version is this binary's version, for the ledger and the summary.
	Version string
	// Args are the command line, for the ledger.
	Args []string
	// Sources are the source kinds that can be opened (nil: Builtin()).
	Sources Sources
	// MoodleClient builds a site's web-service client (rate, concurrency,
	// retries, the process's request counters).
	MoodleClient func(site *config.MoodleSite, opts ...moodle.Option) (*moodle.Client, error)
	// SaveRequests records the Moodle calls made so far under a run.
	SaveRequests func(ctx context.Context, q warehouse.Querier, runID int64)
	// PublishCatalog publishes the marts' descriptions under a run (the
	// catalog stage; nil: no catalog stage).
	PublishCatalog func(ctx context.Context, q warehouse.Querier, run *ledger.Run) ([]catalog.Published, error)
}

func (e *Env) logger() *slog.Logger {
	if e.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Logger
}

func (e *Env) sources() Sources {
	if e.Sources == nil {
		return Builtin()
	}
	return e.Sources
}

func (e *Env) saveRequests(ctx context.Context, q warehouse.Querier, runID int64) {
	if e.SaveRequests != nil {
		e.SaveRequests(context.WithoutCancel(ctx), q, runID)
	}
}

// UsageError is a mistake in what a night was asked to do (an unknown
// source, entity or stage): the command exits 2 and shows its usage.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// ExitCode makes a usage error exit 2.
func (e *UsageError) ExitCode() int { return exitUsage }

// Usagef returns a *UsageError.
func Usagef(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

// checkSchema refuses a warehouse whose migrations are behind this binary.
func checkSchema(ctx context.Context, pool *pgxpool.Pool) error {
	n, err := warehouse.Pending(ctx, pool)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("the warehouse schema is behind this mim (%d migration(s) pending): run `mim migrate` first", n)
	}
	return nil
}
