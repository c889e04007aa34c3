package schedule

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Querier is what the pause is read and written with (a pool; the
// configuration, which this package serves too, comes before the warehouse).
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Pause is an open hold on the schedules (ctl.schedule_pause): while it
// lasts, `mim serve` runs no scheduled job, whichever daemon it is, and
// records each due time as Held.
type Pause struct {
	ID       int64
	At       time.Time
	By       string
	Reason   string
	Resumed  *time.Time
	ResumeBy *string
}

// Held: the job was due while the schedules were paused.
const Held = "held"

// String says who paused the schedules, when and why.
func (p *Pause) String() string {
	s := fmt.Sprintf("paused by %s since %s", p.By, p.At.Local().Format("2006-01-02 15:04"))
	if p.Reason != "" {
		s += ": " + p.Reason
	}
	return s
}

// CurrentPause returns the open pause, or nil when the schedules run.
func CurrentPause(ctx context.Context, q Querier) (*Pause, error) {
	var p Pause
	err := q.QueryRow(ctx, `SELECT pause_id, paused_at, paused_by, reason FROM ctl.schedule_pause WHERE resumed_at IS NULL`).
		Scan(&p.ID, &p.At, &p.By, &p.Reason)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading whether the schedules are paused: %w", err)
	}
	return &p, nil
}

// PauseSchedules opens a pause. If one is open already it is returned
// unchanged with created false.
func PauseSchedules(ctx context.Context, q Querier, by, reason string) (p *Pause, created bool, err error) {
	var np Pause
	err = q.QueryRow(ctx, `INSERT INTO ctl.schedule_pause (paused_by, reason) VALUES ($1, $2)
		ON CONFLICT ((true)) WHERE resumed_at IS NULL DO NOTHING
		RETURNING pause_id, paused_at, paused_by, reason`, by, reason).Scan(&np.ID, &np.At, &np.By, &np.Reason)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		p, err = CurrentPause(ctx, q)
		return p, false, err
	case err != nil:
		return nil, false, fmt.Errorf("pausing the schedules: %w", err)
	}
	return &np, true, nil
}

// ResumeSchedules closes the open pause and returns it (nil when the
// schedules were not paused).
func ResumeSchedules(ctx context.Context, q Querier, by string) (*Pause, error) {
	var p Pause
	var at time.Time
	err := q.QueryRow(ctx, `UPDATE ctl.schedule_pause SET resumed_at = now(), resumed_by = $1 WHERE resumed_at IS NULL
		RETURNING pause_id, paused_at, paused_by, reason, resumed_at`, by).Scan(&p.ID, &p.At, &p.By, &p.Reason, &at)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("resuming the schedules: %w", err)
	}
	p.Resumed, p.ResumeBy = &at, &by
	return &p, nil
}
