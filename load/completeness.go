package load

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/export/guard"
	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/settings"
)

// Completeness is earned, not assumed. A source that declares a scope
// complete may still have been given an incomplete answer (a web-service
// role that lost a capability returns 2 users of 338 with no warning; a
// view emptied by a failed refresh returns no rows): before such a read may
// delete anything, the loader compares it with the entity's last complete
// read. When it came back empty, or would delete more than the entity's
// shrink limit of its live records, the read is suspect: nothing of the
// entity lands, raw keeps its last complete read, the step is refused
// (exit 3) and ctl.guard_event records it (guard completeness), until an
// operator accepts it with the one-shot completeness_override.

// NeverSuspect is a shrink limit that never judges an entity, not even
// when it comes back empty.
const NeverSuspect = -1

// minShrinkRows: a read that deletes fewer records than this is never
// suspect for its share alone (a small entity's everyday change), only when
// it comes back empty.
const minShrinkRows = 10

// DefaultShrinkLimit is the share (percent) of an entity's live records one
// read may delete before it is suspect, when the configuration does not set
// one: 10 for the accounts every enrolment hangs on (Moodle users, SITS
// students), 20 for the other entities whose lost rows take something away
// from Moodle (Moodle courses and enrolments, SITS registrations, CMIS
// groups and members), and 100 for every other entity: any shrink is
// believed there. Whatever the limit (short of NeverSuspect), a read that
// comes back empty where the last complete read was not is suspect.
func DefaultShrinkLimit(id extract.EntityID) int {
	switch id.Source + "/" + id.Entity {
	case "moodle/users", "sits/student":
		return 10
	case "moodle/courses", "moodle/enrolments", "sits/student_enrl", "cmis/module_group", "cmis/group_member":
		return 20
	}
	return 100
}

// WithShrinkLimits sets each entity's shrink limit (default
// DefaultShrinkLimit); NeverSuspect switches the judgement off.
func WithShrinkLimits(limit func(extract.EntityID) int) Option {
	return func(l *Loader) { l.shrink = limit }
}

// WithOperator names who spends completeness_override, for the settings
// history (default "mim <command>" of the run).
func WithOperator(by string) Option { return func(l *Loader) { l.by = by } }

// suspicion is a read judged suspect.
type suspicion struct {
	verdict  guard.Verdict
	err      *SuspectError
	accepted bool // completeness_override let it land
}

// judge compares the read with the live records of the scopes it completed,
// inside the merge transaction, before anything is written.
func (w *writer) judge(ctx context.Context, tx pgx.Tx, p *scopePlan, out *mergeOutcome, deleted int64) error {
	limit := DefaultShrinkLimit(w.id)
	if w.l.shrink != nil {
		limit = w.l.shrink(w.id)
	}
	if limit < 0 || len(p.complete) == 0 {
		return nil
	}
	var live int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM raw.record
		WHERE source = $1 AND instance = $2 AND entity = $3 AND deleted_run IS NULL AND scope = ANY($4::text[])`,
		w.id.Source, w.id.Instance, w.id.Entity, p.complete).Scan(&live); err != nil {
		return fmt.Errorf("judging the read against the last complete one: %w", err)
	}
	e := &SuspectError{Entity: w.id, Live: live, Deleted: deleted, Written: out.applied, Limit: limit}
	empty := out.applied == 0 && live > 0
	shrunk := limit < 100 && deleted >= minShrinkRows && deleted*100 > int64(limit)*live
	if !empty && !shrunk {
		return nil
	}
	v := guard.Verdict{Guard: guard.Completeness, Instance: w.id.Instance, Subject: w.id.Source + "/" + w.id.Entity,
		Previous: live, Current: live - deleted, Limit: float64(limit), Breaches: []string{e.what()},
		Detail: map[string]any{"entity": w.id.String(), "live": live, "deleted": deleted, "written": out.applied,
			"complete_scopes": len(p.complete)}}
	if live > 0 {
		v.Percent = 100 * float64(deleted) / float64(live)
	}
	out.suspect = &suspicion{verdict: v, err: e}
	by := w.l.by
	if by == "" {
		by = "mim " + w.l.run.Command
	}
	used, err := settings.TakeOneShot(ctx, tx, guard.OverrideOf(guard.Completeness), w.l.run.ID, by)
	if err != nil {
		return err
	}
	if !used {
		return e
	}
	out.suspect.accepted = true
	_, err = guard.Record(ctx, tx, v.Event(w.l.run.ID, guard.Overridden))
	return err
}

// recordSuspect records a refused read in ctl.guard_event (its merge was
// rolled back, so it is written on its own).
func (w *writer) recordSuspect(ctx context.Context, s *suspicion) error {
	_, err := guard.Record(ctx, w.l.pool, s.verdict.Event(w.l.run.ID, guard.Refused))
	return err
}
