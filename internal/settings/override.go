package settings

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/warehouse"
)

// TypeOverride is the type of a one-shot override: a bool that needs a
// reason to be set, lapses after the run that used it or after
// override_hours, and whose every arming is kept in ctl.override_arm.
const TypeOverride = "override"

// ReasonRequiredError says an override was armed without saying why.
type ReasonRequiredError struct{ Key string }

func (e *ReasonRequiredError) Error() string {
	return fmt.Sprintf("%s is a one-shot override: arming it needs a reason (--reason \"...\"), kept with who armed it; "+
		"policy: overrides stay off unless a run with one has been agreed by the Service Operations Manager and the Service Owner", e.Key)
}

// ExitCode makes a missing reason a usage error.
func (e *ReasonRequiredError) ExitCode() int { return 2 }

// Arm is one arming of an override (ctl.override_arm).
type Arm struct {
	ID      int64
	Key     string
	ArmedAt time.Time
	ArmedBy string
	Reason  string
	// Expires is when it lapses if no run uses it first.
	Expires time.Time
	// Lapsed: Expires has passed (it is reset when a run next looks at it).
	Lapsed bool
	// UsedRun is the run that used it; EndedAt, EndedHow (used, expired,
	// disarmed) and EndedBy say how its arming ended.
	UsedRun  *int64
	EndedAt  *time.Time
	EndedHow string
	EndedBy  string
}

const armColumns = `a.arm_id, a.key, a.armed_at, a.armed_by, a.reason, a.expires_at, a.expires_at < now(),
	a.used_run, a.ended_at, coalesce(a.ended_how, ''), coalesce(a.ended_by, '')`

func scanArm(r pgx.CollectableRow) (Arm, error) {
	var a Arm
	err := r.Scan(&a.ID, &a.Key, &a.ArmedAt, &a.ArmedBy, &a.Reason, &a.Expires, &a.Lapsed, &a.UsedRun, &a.EndedAt, &a.EndedHow, &a.EndedBy)
	return a, err
}

// openArms lists the armings not ended yet that match where.
func openArms(ctx context.Context, q warehouse.Querier, where string) ([]Arm, error) {
	rows, err := q.Query(ctx, `SELECT `+armColumns+` FROM ctl.override_arm a WHERE a.ended_at IS NULL AND `+where+` ORDER BY a.key`)
	if err != nil {
		return nil, fmt.Errorf("reading the armed overrides: %w", err)
	}
	arms, err := pgx.CollectRows(rows, scanArm)
	if err != nil {
		return nil, fmt.Errorf("reading the armed overrides: %w", err)
	}
	return arms, nil
}

// openArm returns the current arming of key (nil: none recorded).
func openArm(ctx context.Context, q warehouse.Querier, key string) (*Arm, error) {
	rows, err := q.Query(ctx, `SELECT `+armColumns+` FROM ctl.override_arm a WHERE a.ended_at IS NULL AND a.key = $1 FOR UPDATE`, key)
	if err != nil {
		return nil, fmt.Errorf("reading the arming of %s: %w", key, err)
	}
	a, err := pgx.CollectOneRow(rows, scanArm)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the arming of %s: %w", key, err)
	}
	return &a, nil
}

// Override is one override setting as an operator needs to see it.
type Override struct {
	Key         string
	Description string
	// Armed: the setting is true and has not lapsed; Arm says who armed it,
	// why and until when (nil when it was set outside mim settings).
	Armed bool
	Arm   *Arm
	// Last is the latest arming that ended (nil: never armed).
	Last *Arm
}

// Overrides lists every one-shot override, armed ones first.
func Overrides(ctx context.Context, q warehouse.Querier) ([]Override, error) {
	all, err := List(ctx, q)
	if err != nil {
		return nil, err
	}
	open, err := openArms(ctx, q, `TRUE`)
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, `SELECT DISTINCT ON (a.key) `+armColumns+` FROM ctl.override_arm a
		WHERE a.ended_at IS NOT NULL ORDER BY a.key, a.arm_id DESC`)
	if err != nil {
		return nil, fmt.Errorf("reading the overrides' history: %w", err)
	}
	ended, err := pgx.CollectRows(rows, scanArm)
	if err != nil {
		return nil, fmt.Errorf("reading the overrides' history: %w", err)
	}
	var armed, idle []Override
	for _, s := range all {
		if s.Type != TypeOverride {
			continue
		}
		o := Override{Key: s.Key, Description: s.Description}
		for i := range open {
			if open[i].Key == s.Key {
				o.Arm = &open[i]
			}
		}
		for i := range ended {
			if ended[i].Key == s.Key {
				o.Last = &ended[i]
			}
		}
		o.Armed = s.Value == "true" && (o.Arm == nil || !o.Arm.Lapsed)
		if o.Armed {
			armed = append(armed, o)
		} else {
			idle = append(idle, o)
		}
	}
	return append(armed, idle...), nil
}

// Describe says in one line who armed the override, why, and when it
// lapses; or, when it is not armed, how its last arming ended.
func (o Override) Describe() string {
	const stamp = "2006-01-02 15:04"
	switch {
	case o.Armed && o.Arm == nil:
		return fmt.Sprintf("%s is ARMED (set outside mim settings: no reason recorded); it lapses after the next run that uses it", o.Key)
	case o.Armed:
		a := o.Arm
		return fmt.Sprintf("%s is ARMED by %s at %s: %q; it lapses after the next run that uses it, or at %s",
			o.Key, a.ArmedBy, a.ArmedAt.Local().Format(stamp), a.Reason, a.Expires.Local().Format(stamp))
	case o.Arm != nil && o.Arm.Lapsed:
		a := o.Arm
		return fmt.Sprintf("%s lapsed unused at %s (armed by %s: %q)", o.Key, a.Expires.Local().Format(stamp), a.ArmedBy, a.Reason)
	case o.Last != nil:
		a := o.Last
		how := a.EndedHow
		switch {
		case a.EndedHow == "used" && a.UsedRun != nil:
			how = fmt.Sprintf("used by run %d", *a.UsedRun)
		case a.EndedHow == "disarmed":
			how = "disarmed by " + a.EndedBy
		case a.EndedHow == "expired":
			how = "lapsed unused"
		}
		return fmt.Sprintf("%s is off; last armed by %s at %s (%q), %s at %s", o.Key, a.ArmedBy, a.ArmedAt.Local().Format(stamp),
			a.Reason, how, a.EndedAt.Local().Format(stamp))
	}
	return o.Key + " is off (never armed)"
}

// OneShotAvailable reports, spending nothing, whether TakeOneShot would let
// run runID through key now: a guard that must refuse unless several
// overrides are armed asks first, so that none is spent on a run that is
// refused anyway.
func OneShotAvailable(ctx context.Context, q warehouse.Querier, key string, runID int64) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT CASE WHEN s.value = 'true'
			THEN NOT EXISTS (SELECT 1 FROM ctl.override_arm a WHERE a.key = s.key AND a.ended_at IS NULL AND a.expires_at < now())
			ELSE EXISTS (SELECT 1 FROM ctl.override_arm a WHERE a.key = s.key AND a.used_run = $2) END
		FROM ctl.settings s WHERE s.key = $1`, key, runID).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, unknown(ctx, q, key)
	}
	if err != nil {
		return false, fmt.Errorf("reading setting %s: %w", key, err)
	}
	return ok, nil
}
