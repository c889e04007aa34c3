// Package guard holds the rules that stand between a new state and Moodle,
// one budget model for every removal (see Verdict): the incumbent's
// threshold (a feed must keep threshold_percent of what was published, or
// it is refused), the per-course hold (a course about to lose more than
// course_drop_percent of its students keeps them this time), the tutor
// table's threshold, group sync's delete and member-removal budgets and
// per-group hold, and an extract's completeness. Each breach is refused or
// held unless the guard's one-shot override is armed (with a reason; it
// lapses after the run that used it, or after override_hours); each
// decision is recorded in ctl.guard_event and mailed. The guards decide and
// record; the stages measure and publish.
package guard

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Guard names, as ctl.guard_event and mim_guard_events_total record them.
const (
	Threshold      = "threshold"       // IMS memberships: active students and memberships
	CourseDrop     = "course_drop"     // per-course hold of IMS drops
	TutorThreshold = "tutor_threshold" // personal-tutor table: rows and kept pairs
)

// Decisions, as ctl.guard_event records them.
const (
	Passed     = "passed"
	Refused    = "refused"
	Overridden = "overridden"
	Held       = "held"
)

// Setting keys (ctl.settings, migration 00001).
const (
	SettingPercent           = "threshold_percent"
	SettingOverride          = "threshold_override"
	SettingSendEmail         = "threshold_send_email"
	SettingEmail             = "threshold_email"
	SettingEmailSubject      = "threshold_email_subject"
	SettingEmailMessage      = "threshold_email_message"
	SettingCourseDropPercent = "course_drop_percent"
)

// Settings are the guards' knobs as ctl.settings holds them now.
type Settings struct {
	ThresholdPercent int
	// Override is threshold_override as read; it is spent with
	// settings.TakeOneShot in the transaction that publishes.
	Override  bool
	SendEmail bool
	// Email are threshold_email's addresses; empty means notify.to.
	Email             []string
	Subject, Message  string
	CourseDropPercent int
	// CourseDropOverride is course_drop_override as read (spent with
	// settings.TakeOneShot when a hold uses it).
	CourseDropOverride bool
}

// ReadSettings reads the guards' settings.
func ReadSettings(ctx context.Context, q warehouse.Querier) (Settings, error) {
	var s Settings
	var err error
	if s.ThresholdPercent, err = settings.Int(ctx, q, SettingPercent); err != nil {
		return s, err
	}
	if s.Override, err = settings.Bool(ctx, q, SettingOverride); err != nil {
		return s, err
	}
	if s.SendEmail, err = settings.Bool(ctx, q, SettingSendEmail); err != nil {
		return s, err
	}
	email, err := settings.Text(ctx, q, SettingEmail)
	if err != nil {
		return s, err
	}
	for _, a := range strings.Split(email, ",") {
		if a = strings.TrimSpace(a); a != "" {
			s.Email = append(s.Email, a)
		}
	}
	if s.Subject, err = settings.Text(ctx, q, SettingEmailSubject); err != nil {
		return s, err
	}
	if s.Message, err = settings.Text(ctx, q, SettingEmailMessage); err != nil {
		return s, err
	}
	if s.CourseDropPercent, err = settings.Int(ctx, q, SettingCourseDropPercent); err != nil {
		return s, err
	}
	if s.CourseDropOverride, err = settings.Bool(ctx, q, OverrideOf(CourseDrop)); err != nil {
		return s, err
	}
	return s, nil
}

// Measure is one quantity of a new target set against the same quantity at
// the last successful publish.
type Measure struct {
	Subject  string // active_students, active_memberships, rows, kept_pairs
	Previous int64
	Current  int64
}

// Percent is Current as a share of Previous; 100 when there was nothing.
func (m Measure) Percent() float64 {
	if m.Previous == 0 {
		return 100
	}
	return 100 * float64(m.Current) / float64(m.Previous)
}

// Breaches reports whether the measure fell below limit percent of what it
// was. Nothing before means nothing to fall from.
func (m Measure) Breaches(limit int) bool {
	return m.Previous > 0 && m.Current*100 < int64(limit)*m.Previous
}

func (m Measure) String() string {
	return fmt.Sprintf("%s %d of %d (%.1f%%)", m.Subject, m.Current, m.Previous, m.Percent())
}

// Check is one threshold comparison: a feed of one site against its last
// successful publish.
type Check struct {
	Guard    string // Threshold or TutorThreshold
	Instance string
	// First is true when the site has no successful publish of the feed
	// yet: the first one always passes.
	First    bool
	Limit    int // threshold_percent
	Measures []Measure
}

// Breaches lists the measures below the limit.
func (c Check) Breaches() []Measure {
	var out []Measure
	for _, m := range c.Measures {
		if m.Breaches(c.Limit) {
			out = append(out, m)
		}
	}
	return out
}

// Decide is the incumbent's rule: within the threshold the feed passes;
// beyond it, it is refused, unless override is set, which lets it through
// (once: the caller spends the override with the publish).
func (c Check) Decide(override bool) string {
	switch {
	case len(c.Breaches()) == 0:
		return Passed
	case override:
		return Overridden
	}
	return Refused
}

// DecideIn is Decide in the transaction that publishes: a breach spends the
// one-shot threshold_override when it is set (its reset commits with the
// publish, or not at all), and is refused otherwise.
func (c Check) DecideIn(ctx context.Context, tx pgx.Tx, runID int64, by string) (string, error) {
	if len(c.Breaches()) == 0 {
		return Passed, nil
	}
	used, err := settings.TakeOneShot(ctx, tx, OverrideOf(c.Guard), runID, by)
	if err != nil {
		return "", err
	}
	if used {
		return Overridden, nil
	}
	return Refused, nil
}

// Describe says what the check found, for logs, mail and the dry run.
func (c Check) Describe(decision string) string {
	if c.First {
		return fmt.Sprintf("%s: %s (first publish of site %s: nothing to compare with)", c.Guard, decision, c.Instance)
	}
	parts := make([]string, len(c.Measures))
	for i, m := range c.Measures {
		parts[i] = m.String()
	}
	s := fmt.Sprintf("%s: %s, %s (limit %d%%)", c.Guard, decision, strings.Join(parts, ", "), c.Limit)
	if decision == Overridden {
		s += "; " + OverrideOf(c.Guard) + " let it through once"
	}
	return s
}

// worst is the measure with the lowest share.
func (c Check) worst() (Measure, bool) {
	if len(c.Measures) == 0 {
		return Measure{}, false
	}
	w := c.Measures[0]
	for _, m := range c.Measures[1:] {
		if m.Percent() < w.Percent() {
			w = m
		}
	}
	return w, true
}

// CourseLoss is what one course would lose in a delta.
type CourseLoss struct {
	Course   string // course idnumber
	Students int64  // students (active Learner rows) published now
	Drops    int64  // of them, those the delta drops or suspends
}

// Percent is the share of the course's students the delta drops.
func (c CourseLoss) Percent() float64 {
	if c.Students == 0 {
		return 0
	}
	return 100 * float64(c.Drops) / float64(c.Students)
}

// Hold returns the courses that would lose more than limit percent of their
// students: their drops are held back this time.
func Hold(losses []CourseLoss, limit int) []CourseLoss {
	var held []CourseLoss
	for _, l := range losses {
		if l.Students > 0 && l.Drops*100 > int64(limit)*l.Students {
			held = append(held, l)
		}
	}
	return held
}

// Event is one row of ctl.guard_event.
type Event struct {
	RunID    int64 // 0: none
	Instance string
	Guard    string
	Decision string
	Subject  string
	Previous *int64
	Current  *int64
	Percent  *float64
	Limit    *float64
	Detail   any // JSON-encodable; nil for {}
}

// Record writes e and returns its event id.
func Record(ctx context.Context, q warehouse.Querier, e Event) (int64, error) {
	d := []byte("{}")
	if e.Detail != nil {
		var err error
		if d, err = json.Marshal(e.Detail); err != nil {
			return 0, fmt.Errorf("encoding the %s guard's decision for site %s: %w", e.Guard, e.Instance, err)
		}
	}
	var run *int64
	if e.RunID > 0 {
		run = &e.RunID
	}
	var id int64
	err := q.QueryRow(ctx, `INSERT INTO ctl.guard_event (run_id, instance, guard, decision, subject, previous, current, percent, limit_value, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING event_id`,
		run, e.Instance, e.Guard, e.Decision, e.Subject, e.Previous, e.Current, e.Percent, e.Limit, d).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("recording the %s guard's decision for site %s: %w", e.Guard, e.Instance, err)
	}
	return id, nil
}

// CheckEvent is the ctl.guard_event row of a threshold decision: the
// subject and figures of its lowest measure, every measure in the detail.
func CheckEvent(runID int64, c Check, decision, feed string) Event {
	type measure struct {
		Subject  string  `json:"subject"`
		Previous int64   `json:"previous"`
		Current  int64   `json:"current"`
		Percent  float64 `json:"percent"`
		Breached bool    `json:"breached"`
	}
	ms := make([]measure, len(c.Measures))
	for i, m := range c.Measures {
		ms[i] = measure{m.Subject, m.Previous, m.Current, round2(m.Percent()), m.Breaches(c.Limit)}
	}
	e := Event{RunID: runID, Instance: c.Instance, Guard: c.Guard, Decision: decision,
		Detail: map[string]any{"feed": feed, "first": c.First, "measures": ms}}
	limit := float64(c.Limit)
	e.Limit = &limit
	if w, ok := c.worst(); ok {
		p, cur, pct := w.Previous, w.Current, round2(w.Percent())
		e.Subject, e.Previous, e.Current, e.Percent = w.Subject, &p, &cur, &pct
	}
	return e
}

// Verdict is the per-course hold's judgement of one course's drops.
func (l CourseLoss) Verdict(instance string, limit int, sample []string) Verdict {
	v := Verdict{Guard: CourseDrop, Instance: instance, Subject: l.Course, Previous: l.Students, Current: l.Students - l.Drops,
		Percent: l.Percent(), Limit: float64(limit), Hold: true,
		Detail: map[string]any{"students": l.Students, "drops": l.Drops, "sample_drops": sample}}
	if l.Students > 0 && l.Drops*100 > int64(limit)*l.Students {
		v.Breaches = []string{fmt.Sprintf("course %s would lose %d of its %d students (%.0f%%), more than course_drop_percent %d%%",
			l.Course, l.Drops, l.Students, l.Percent(), limit)}
	}
	return v
}

// HoldEvent is the ctl.guard_event row of one held course (decision Held,
// or Overridden when course_drop_override let its drops through).
func HoldEvent(runID int64, instance string, l CourseLoss, limit int, sample []string, decision string) Event {
	return l.Verdict(instance, limit, sample).Event(runID, decision)
}

// MarkNotified records that the events' mail went out.
func MarkNotified(ctx context.Context, q warehouse.Querier, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := q.Exec(ctx, `UPDATE ctl.guard_event SET notified = true WHERE event_id = ANY($1)`, ids); err != nil {
		return fmt.Errorf("recording that guard mail was sent: %w", err)
	}
	return nil
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }
