package warehouse

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Deployment is the environment this warehouse belongs to (ctl.deployment).
type Deployment struct {
	Environment string
	ClaimedAt   time.Time
	ClaimedBy   string
}

// GetDeployment reads ctl.deployment; it returns nil when the warehouse has
// not been labelled yet.
func GetDeployment(ctx context.Context, q Querier) (*Deployment, error) {
	var d Deployment
	err := q.QueryRow(ctx, `SELECT environment, claimed_at, claimed_by FROM ctl.deployment`).
		Scan(&d.Environment, &d.ClaimedAt, &d.ClaimedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading ctl.deployment: %w", err)
	}
	return &d, nil
}

// EnsureDeployment labels an unlabelled warehouse with env and returns the
// label now in place, which is not env when the warehouse already belonged to
// another environment (a restored copy): that label is never overwritten here.
func EnsureDeployment(ctx context.Context, pool *pgxpool.Pool, env, by string) (*Deployment, bool, error) {
	tag, err := pool.Exec(ctx, `
		WITH ins AS (
			INSERT INTO ctl.deployment (environment, claimed_by) VALUES ($1, $2)
			ON CONFLICT (singleton) DO NOTHING RETURNING environment)
		INSERT INTO ctl.deployment_claim (environment, claimed_by) SELECT environment, $2 FROM ins`, env, by)
	if err != nil {
		return nil, false, fmt.Errorf("labelling the warehouse with environment %s: %w", env, err)
	}
	d, err := GetDeployment(ctx, pool)
	return d, tag.RowsAffected() == 1, err
}

// Claim relabels the warehouse deliberately (`mim migrate --claim ENV`), for
// example after restoring a production backup into staging. It returns the
// previous environment.
func Claim(ctx context.Context, pool *pgxpool.Pool, env, by string) (string, error) {
	var previous string
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT environment FROM ctl.deployment FOR UPDATE`).Scan(&previous)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO ctl.deployment (environment, claimed_by) VALUES ($1, $2)
			ON CONFLICT (singleton) DO UPDATE SET environment = excluded.environment,
				claimed_by = excluded.claimed_by, claimed_at = now()`, env, by); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO ctl.deployment_claim (environment, previous_environment, claimed_by)
			VALUES ($1, NULLIF($2, ''), $3)`, env, previous, by)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("claiming the warehouse for environment %s: %w", env, err)
	}
	return previous, nil
}

// MismatchError says the warehouse belongs to another environment than this
// deployment: every write to Moodle is refused until it is claimed.
type MismatchError struct {
	Configured string // the configuration's environment
	Warehouse  string // ctl.deployment's environment ("" when unlabelled)
}

func (e *MismatchError) Error() string {
	if e.Warehouse == "" {
		return fmt.Sprintf("the warehouse has no environment label; run `mim migrate` (this deployment is %q)", e.Configured)
	}
	return fmt.Sprintf("the warehouse belongs to environment %q but this deployment is %q "+
		"(a restored copy?); nothing will be written to Moodle until someone runs `mim migrate --claim %s` deliberately",
		e.Warehouse, e.Configured, e.Configured)
}

// ExitCode makes an environment mismatch a guard refusal (exit 3).
func (e *MismatchError) ExitCode() int { return 3 }

// CheckDeployment returns a *MismatchError unless the warehouse is labelled env.
func CheckDeployment(ctx context.Context, q Querier, env string) error {
	d, err := GetDeployment(ctx, q)
	if err != nil {
		return err
	}
	if d == nil {
		return &MismatchError{Configured: env}
	}
	if d.Environment != env {
		return &MismatchError{Configured: env, Warehouse: d.Environment}
	}
	return nil
}
