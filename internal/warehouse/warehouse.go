// Package warehouse opens MIM's PostgreSQL warehouse and keeps its identity:
// the goose migrations, the deployment environment recorded in ctl.deployment,
// and the advisory lock that stops two runs from overlapping.
package warehouse

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"path"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/mimwarehouse/mim/internal/secret"
	sqlfiles "github.com/mimwarehouse/mim/sql"
)

// Querier is what warehouse code needs from a pool or a transaction, so the
// same function runs standalone or inside a caller's transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// WithDatabase returns dsn (a URL or key=value connection string) naming
// database db instead of its own.
func WithDatabase(dsn, db string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return dsn + " dbname=" + db
	}
	u.Path = "/" + db
	return u.String()
}

// Open connects to the warehouse and checks the connection. The DSN's
// password never appears in the returned error.
func Open(ctx context.Context, dsn secret.DSN, maxConns int) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(dsn.Reveal())
	if err != nil {
		// pgx's parse errors quote the connection string; ours is redacted.
		return nil, fmt.Errorf("parsing the warehouse DSN %s: not a valid PostgreSQL connection string", dsn)
	}
	if maxConns > 0 {
		pc.MaxConns = int32(maxConns)
	}
	pc.ConnConfig.RuntimeParams["application_name"] = "mim"
	password := pc.ConnConfig.Password
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connecting to the warehouse %s: %w", dsn, scrub(err, password))
	}
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to the warehouse %s: %w", dsn, scrub(err, password))
	}
	return pool, nil
}

// scrub redacts the password field in an error's text (secret.ScrubPassword).
func scrub(err error, password string) error {
	if msg := secret.ScrubPassword(err.Error(), password); msg != err.Error() {
		return errors.New(msg)
	}
	return err
}

// VersionTable is where goose records applied migrations.
const VersionTable = "ctl.goose_db_version"

// lockID identifies goose's own session lock (distinct from RunLockID).
const migrateLockID = 0x6d696d5f6d6967 // "mim_mig"

func provider(db *sql.DB, logger *slog.Logger) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrateLockID))
	if err != nil {
		return nil, err
	}
	opts := []goose.ProviderOption{
		goose.WithTableName(VersionTable),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		// Areas number their migrations in ranges (the header of 00001), so
		// a range below the newest applied one can land later: a warehouse
		// already at 00133 must still apply a new 00080.
		goose.WithAllowOutofOrder(true),
	}
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	}
	migrations, err := fs.Sub(sqlfiles.Migrations, "migrations")
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectPostgres, db, migrations, opts...)
}

// Migration is one migration and whether it is applied.
type Migration struct {
	Version   int64
	Name      string
	Applied   bool
	AppliedAt time.Time
}

// Migrate applies every pending migration and returns those it applied. It
// is safe to run concurrently (goose holds a session lock) and a no-op when
// nothing is pending.
func Migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) ([]Migration, error) {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS ctl"); err != nil {
		return nil, fmt.Errorf("creating schema ctl: %w", err)
	}
	p, err := provider(db, logger)
	if err != nil {
		return nil, fmt.Errorf("preparing migrations: %w", err)
	}
	results, err := p.Up(ctx)
	var applied []Migration
	for _, r := range results {
		if r.Error == nil && !r.Empty {
			applied = append(applied, Migration{Version: r.Source.Version, Name: baseName(r.Source.Path), Applied: true})
		}
	}
	if err != nil {
		return applied, fmt.Errorf("applying migrations: %w", err)
	}
	return applied, nil
}

// Status lists every known migration and whether it has been applied.
func Status(ctx context.Context, pool *pgxpool.Pool) ([]Migration, error) {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS ctl"); err != nil {
		return nil, fmt.Errorf("creating schema ctl: %w", err)
	}
	p, err := provider(db, nil)
	if err != nil {
		return nil, fmt.Errorf("preparing migrations: %w", err)
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading migration status: %w", err)
	}
	out := make([]Migration, 0, len(st))
	for _, s := range st {
		out = append(out, Migration{
			Version:   s.Source.Version,
			Name:      baseName(s.Source.Path),
			Applied:   s.State == goose.StateApplied,
			AppliedAt: s.AppliedAt,
		})
	}
	return out, nil
}

// Pending reports how many migrations are not applied yet.
func Pending(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	st, err := Status(ctx, pool)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range st {
		if !m.Applied {
			n++
		}
	}
	return n, nil
}

func baseName(p string) string { return path.Base(p) }
