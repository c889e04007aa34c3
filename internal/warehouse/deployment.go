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
	// Bound is the identity of the warehouse the label was written in
	// (nil: not bound). A restored or copied warehouse carries its label
	// but not its identity, so it no longer passes for that environment.
	Bound *Identity
}

// Identity is what tells one warehouse from a copy of it: the cluster's
// system identifier (a restore into another cluster changes it) and the
// database's OID (a copy into another database of the cluster changes it).
type Identity struct {
	SystemIdentifier int64
	DatabaseOID      int64
}

func (i Identity) String() string {
	return fmt.Sprintf("cluster %d, database oid %d", i.SystemIdentifier, i.DatabaseOID)
}

// identitySQL selects the identity of the database a statement runs in.
const identitySQL = `(SELECT system_identifier FROM pg_control_system()), (SELECT oid::bigint FROM pg_database WHERE datname = current_database())`

// CurrentIdentity returns the identity of the warehouse q is connected to.
func CurrentIdentity(ctx context.Context, q Querier) (Identity, error) {
	var id Identity
	if err := q.QueryRow(ctx, `SELECT `+identitySQL).Scan(&id.SystemIdentifier, &id.DatabaseOID); err != nil {
		return id, fmt.Errorf("reading the warehouse's identity: %w", err)
	}
	return id, nil
}

// GetDeployment reads ctl.deployment; it returns nil when the warehouse has
// not been labelled yet.
func GetDeployment(ctx context.Context, q Querier) (*Deployment, error) {
	var d Deployment
	var sys, oid *int64
	err := q.QueryRow(ctx, `SELECT environment, claimed_at, claimed_by, system_identifier, database_oid FROM ctl.deployment`).
		Scan(&d.Environment, &d.ClaimedAt, &d.ClaimedBy, &sys, &oid)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading ctl.deployment: %w", err)
	}
	if sys != nil && oid != nil {
		d.Bound = &Identity{SystemIdentifier: *sys, DatabaseOID: *oid}
	}
	return &d, nil
}

// Foreign explains why the label does not belong to the warehouse whose
// identity is here ("" when it does): it was written in another warehouse
// (a restore or a copy), or was never bound to one.
func (d *Deployment) Foreign(here Identity) string {
	switch {
	case d.Bound == nil:
		return "the label is not bound to a warehouse"
	case *d.Bound != here:
		return fmt.Sprintf("the label was written in another warehouse (%s; this one is %s): a restored or copied warehouse", d.Bound, here)
	}
	return ""
}

// EnsureDeployment labels an unlabelled warehouse with env (bound to its
// identity) and returns the label now in place, which is not env when the
// warehouse already belonged to another environment (a restored copy): that
// label is never overwritten here.
func EnsureDeployment(ctx context.Context, pool *pgxpool.Pool, env, by string) (*Deployment, bool, error) {
	tag, err := pool.Exec(ctx, `
		WITH ins AS (
			INSERT INTO ctl.deployment (environment, claimed_by, system_identifier, database_oid) VALUES ($1, $2, `+identitySQL+`)
			ON CONFLICT (singleton) DO NOTHING RETURNING environment, system_identifier, database_oid)
		INSERT INTO ctl.deployment_claim (environment, claimed_by, system_identifier, database_oid)
		SELECT environment, $2, system_identifier, database_oid FROM ins`, env, by)
	if err != nil {
		return nil, false, fmt.Errorf("labelling the warehouse with environment %s: %w", env, err)
	}
	d, err := GetDeployment(ctx, pool)
	return d, tag.RowsAffected() == 1, err
}

// Claim relabels the warehouse deliberately (`mim migrate --claim ENV`), for
// example after restoring a production backup into staging, and binds the
// label to this warehouse's identity. It returns the previous environment.
func Claim(ctx context.Context, pool *pgxpool.Pool, env, by string) (string, error) {
	var previous string
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT environment FROM ctl.deployment FOR UPDATE`).Scan(&previous)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO ctl.deployment (environment, claimed_by, system_identifier, database_oid) VALUES ($1, $2, `+identitySQL+`)
			ON CONFLICT (singleton) DO UPDATE SET environment = excluded.environment,
				claimed_by = excluded.claimed_by, claimed_at = now(),
				system_identifier = excluded.system_identifier, database_oid = excluded.database_oid`, env, by); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO ctl.deployment_claim (environment, previous_environment, claimed_by, system_identifier, database_oid)
			VALUES ($1, NULLIF($2, ''), $3, `+identitySQL+`)`, env, previous, by)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("claiming the warehouse for environment %s: %w", env, err)
	}
	return previous, nil
}

// MismatchError says the warehouse belongs to another environment than this
// deployment, or its label was written in another warehouse (a restored or
// copied one): every write to Moodle is refused until it is claimed.
type MismatchError struct {
	Configured string // the configuration's environment
	Warehouse  string // ctl.deployment's environment ("" when unlabelled)
	// Foreign says why the label is not this warehouse's ("" when it is).
	Foreign string
}

func (e *MismatchError) Error() string {
	switch {
	case e.Warehouse == "":
		return fmt.Sprintf("the warehouse has no environment label; run `mim migrate` (this deployment is %q)", e.Configured)
	case e.Warehouse != e.Configured:
		return fmt.Sprintf("the warehouse belongs to environment %q but this deployment is %q "+
			"(a restored copy?); nothing will be written to Moodle until someone runs `mim migrate --claim %s` deliberately",
			e.Warehouse, e.Configured, e.Configured)
	}
	return fmt.Sprintf("the warehouse is labelled %q, but %s; nothing will be written to Moodle until someone "+
		"who knows this warehouse is %s's runs `mim migrate --claim %s` deliberately", e.Warehouse, e.Foreign, e.Configured, e.Configured)
}

// ExitCode makes an environment mismatch a guard refusal (exit 3).
func (e *MismatchError) ExitCode() int { return 3 }

// CheckDeployment returns a *MismatchError unless the warehouse is labelled
// env, and the label was written in this warehouse.
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
	here, err := CurrentIdentity(ctx, q)
	if err != nil {
		return err
	}
	if why := d.Foreign(here); why != "" {
		return &MismatchError{Configured: env, Warehouse: d.Environment, Foreign: why}
	}
	return nil
}
