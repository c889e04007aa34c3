// Package settings reads and changes ctl.settings, the operational knobs the
// integration team turns between runs (threshold_percent, threshold_override,
// min_mod_occ_year, ...). Values are typed and validated, and every change is
// kept in ctl.settings_history with who made it and why.
package settings

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Setting is one row of ctl.settings.
type Setting struct {
	Key         string
	Value       string
	Type        string
	Description string
	UpdatedAt   time.Time
	UpdatedBy   string
}

// UnknownError names a setting that does not exist.
type UnknownError struct {
	Key   string
	Known []string
}

func (e *UnknownError) Error() string {
	return fmt.Sprintf("there is no setting %q (known: %s)", e.Key, strings.Join(e.Known, ", "))
}

// ExitCode makes an unknown setting a usage error.
func (e *UnknownError) ExitCode() int { return 2 }

// InvalidError says a value does not fit its setting's type.
type InvalidError struct {
	Key, Value, Reason string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("setting %s: %q %s", e.Key, e.Value, e.Reason)
}

// ExitCode makes an invalid value a usage error.
func (e *InvalidError) ExitCode() int { return 2 }

// List returns every setting, ordered by key.
func List(ctx context.Context, q warehouse.Querier) ([]Setting, error) {
	rows, err := q.Query(ctx, `SELECT key, value, value_type, description, updated_at, updated_by FROM ctl.settings ORDER BY key`)
	if err != nil {
		return nil, fmt.Errorf("reading settings: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Setting, error) {
		var s Setting
		err := r.Scan(&s.Key, &s.Value, &s.Type, &s.Description, &s.UpdatedAt, &s.UpdatedBy)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading settings: %w", err)
	}
	return out, nil
}

// Get returns one setting.
func Get(ctx context.Context, q warehouse.Querier, key string) (Setting, error) {
	var s Setting
	err := q.QueryRow(ctx, `SELECT key, value, value_type, description, updated_at, updated_by FROM ctl.settings WHERE key = $1`, key).
		Scan(&s.Key, &s.Value, &s.Type, &s.Description, &s.UpdatedAt, &s.UpdatedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, unknown(ctx, q, key)
	}
	if err != nil {
		return s, fmt.Errorf("reading setting %s: %w", key, err)
	}
	return s, nil
}

func unknown(ctx context.Context, q warehouse.Querier, key string) error {
	all, err := List(ctx, q)
	if err != nil {
		return err
	}
	e := &UnknownError{Key: key}
	for _, s := range all {
		e.Known = append(e.Known, s.Key)
	}
	sort.Strings(e.Known)
	return e
}

// Int reads an int, percent or year setting.
func Int(ctx context.Context, q warehouse.Querier, key string) (int, error) {
	s, err := Get(ctx, q, key)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(s.Value)
	if err != nil {
		return 0, fmt.Errorf("setting %s holds %q, not a whole number", key, s.Value)
	}
	return n, nil
}

// Bool reads a bool setting.
func Bool(ctx context.Context, q warehouse.Querier, key string) (bool, error) {
	s, err := Get(ctx, q, key)
	if err != nil {
		return false, err
	}
	return s.Value == "true", nil
}

// Text reads any setting's value as text.
func Text(ctx context.Context, q warehouse.Querier, key string) (string, error) {
	s, err := Get(ctx, q, key)
	return s.Value, err
}

// Normalize checks value against a setting type and returns its canonical form.
func Normalize(key, typ, value string) (string, error) {
	v := strings.TrimSpace(value)
	bad := func(reason string) (string, error) { return "", &InvalidError{Key: key, Value: value, Reason: reason} }
	switch typ {
	case "bool", TypeOverride:
		switch strings.ToLower(v) {
		case "true", "yes", "on", "1":
			return "true", nil
		case "false", "no", "off", "0":
			return "false", nil
		}
		return bad("is not true or false")
	case "int":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return bad("is not a whole number of 0 or more")
		}
		return strconv.Itoa(n), nil
	case "percent":
		n, err := strconv.Atoi(strings.TrimSuffix(v, "%"))
		if err != nil || n < 0 || n > 100 {
			return bad("is not a whole percentage from 0 to 100")
		}
		return strconv.Itoa(n), nil
	case "year":
		n, err := strconv.Atoi(v)
		if err != nil || (n != 0 && (n < 1990 || n > 2100)) {
			return bad("is not an academic start year such as 2025 (or 0 for none)")
		}
		return strconv.Itoa(n), nil
	case "email":
		if v == "" {
			return "", nil
		}
		list, err := mail.ParseAddressList(v)
		if err != nil {
			return bad("is not an e-mail address (or a comma-separated list of them)")
		}
		addrs := make([]string, len(list))
		for i, a := range list {
			addrs[i] = a.Address
		}
		return strings.Join(addrs, ", "), nil
	case "text":
		return value, nil
	}
	return bad("has an unknown type " + typ)
}

// Set validates and stores a value, recording the change in
// ctl.settings_history. It returns the old value. Run it inside the
// caller's transaction when the change must stand or fall with other work.
//
// Arming a one-shot override (type "override") needs a reason: it is kept
// with who armed it and until when (override_hours) in ctl.override_arm;
// setting it to false disarms it.
func Set(ctx context.Context, q warehouse.Querier, key, value, by, reason string, runID *int64) (string, error) {
	s, err := Get(ctx, q, key)
	if err != nil {
		return "", err
	}
	v, err := Normalize(key, s.Type, value)
	if err != nil {
		return "", err
	}
	if s.Type == TypeOverride && v == "true" && strings.TrimSpace(reason) == "" {
		return "", &ReasonRequiredError{Key: key}
	}
	old, err := store(ctx, q, key, v, by, reason, runID)
	if err != nil || s.Type != TypeOverride {
		return old, err
	}
	// Whatever was armed before ends here: disarmed, or replaced by a new arming.
	if _, err := q.Exec(ctx, `UPDATE ctl.override_arm SET ended_at = now(), ended_how = 'disarmed', ended_by = $2
		WHERE key = $1 AND ended_at IS NULL`, key, by); err != nil {
		return "", fmt.Errorf("changing setting %s: %w", key, err)
	}
	if v != "true" {
		return old, nil
	}
	if _, err := q.Exec(ctx, `INSERT INTO ctl.override_arm (key, armed_by, reason, expires_at)
		SELECT $1, $2, $3, now() + make_interval(hours => coalesce((SELECT value::int FROM ctl.settings WHERE key = 'override_hours'), 24))`,
		key, by, strings.TrimSpace(reason)); err != nil {
		return "", fmt.Errorf("arming %s: %w", key, err)
	}
	return old, nil
}

// store writes a value and its history row in one statement.
func store(ctx context.Context, q warehouse.Querier, key, v, by, reason string, runID *int64) (string, error) {
	var old *string
	err := q.QueryRow(ctx, `
		WITH upd AS (
			UPDATE ctl.settings s SET value = $2, updated_at = now(), updated_by = $3
			FROM (SELECT key, value FROM ctl.settings WHERE key = $1 FOR UPDATE) o
			WHERE s.key = o.key
			RETURNING o.value AS old_value)
		INSERT INTO ctl.settings_history (key, old_value, new_value, changed_by, reason, run_id)
		SELECT $1, old_value, $2, $3, NULLIF($4, ''), $5 FROM upd
		RETURNING old_value`, key, v, by, reason, runID).Scan(&old)
	if err != nil {
		return "", fmt.Errorf("changing setting %s: %w", key, err)
	}
	if old == nil {
		return "", nil
	}
	return *old, nil
}

// TakeOneShot is how a guard spends a one-shot override (threshold_override,
// group_delete_override, ...): it reports whether the override lets run
// runID through. An armed override is used by the first guard of a run that
// needs it: it is reset to false at once (in tx, so only if tx commits) and
// the arming records the run, so every other guard of the same run may use
// it too, and no later run can. An override armed longer ago than
// override_hours has lapsed instead. Call it inside the transaction that
// publishes, so the override is spent exactly when the publish commits.
func TakeOneShot(ctx context.Context, tx pgx.Tx, key string, runID int64, by string) (bool, error) {
	var v string
	err := tx.QueryRow(ctx, `SELECT value FROM ctl.settings WHERE key = $1 FOR UPDATE`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, unknown(ctx, tx, key)
	}
	if err != nil {
		return false, fmt.Errorf("reading setting %s: %w", key, err)
	}
	if v != "true" {
		var usedByRun bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM ctl.override_arm WHERE key = $1 AND used_run = $2)`, key, runID).Scan(&usedByRun)
		if err != nil {
			return false, fmt.Errorf("reading setting %s: %w", key, err)
		}
		return usedByRun, nil
	}
	arm, err := openArm(ctx, tx, key)
	if err != nil {
		return false, err
	}
	if arm != nil && arm.Lapsed {
		return false, lapse(ctx, tx, arm, by, &runID)
	}
	why := fmt.Sprintf("one-shot override used by run %d", runID)
	if arm != nil {
		why += fmt.Sprintf(" (armed by %s: %s)", arm.ArmedBy, arm.Reason)
	}
	if _, err := store(ctx, tx, key, "false", by, why, &runID); err != nil {
		return false, err
	}
	if arm == nil {
		// Armed outside mim settings (before arming was recorded, or by
		// hand in SQL): the use is recorded all the same.
		_, err = tx.Exec(ctx, `INSERT INTO ctl.override_arm (key, armed_by, reason, expires_at, used_run, ended_at, ended_how, ended_by)
			SELECT key, updated_by, 'armed without a recorded reason', now(), $2, now(), 'used', $3 FROM ctl.settings WHERE key = $1`,
			key, runID, by)
	} else {
		_, err = tx.Exec(ctx, `UPDATE ctl.override_arm SET used_run = $2, ended_at = now(), ended_how = 'used', ended_by = $3
			WHERE arm_id = $1`, arm.ID, runID, by)
	}
	if err != nil {
		return false, fmt.Errorf("recording that run %d used %s: %w", runID, key, err)
	}
	return true, nil
}

// lapse ends an arming whose time ran out and resets its override.
func lapse(ctx context.Context, q warehouse.Querier, a *Arm, by string, runID *int64) error {
	why := fmt.Sprintf("lapsed unused: armed by %s at %s (%s), past its %s", a.ArmedBy,
		a.ArmedAt.Local().Format("2006-01-02 15:04"), a.Reason, a.Expires.Sub(a.ArmedAt).Round(time.Minute))
	if _, err := store(ctx, q, a.Key, "false", by, why, runID); err != nil {
		return err
	}
	if _, err := q.Exec(ctx, `UPDATE ctl.override_arm SET ended_at = now(), ended_how = 'expired', ended_by = $2 WHERE arm_id = $1`,
		a.ID, by); err != nil {
		return fmt.Errorf("recording that %s lapsed: %w", a.Key, err)
	}
	return nil
}

// LapseExpired resets every override armed longer ago than its time, so
// that what ctl.settings says is true. Runs call it as they start.
func LapseExpired(ctx context.Context, q warehouse.Querier, by string) ([]string, error) {
	arms, err := openArms(ctx, q, `a.expires_at < now()`)
	if err != nil {
		return nil, err
	}
	var out []string
	for i := range arms {
		if err := lapse(ctx, q, &arms[i], by, nil); err != nil {
			return out, err
		}
		out = append(out, arms[i].Key)
	}
	return out, nil
}
