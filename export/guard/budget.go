package guard

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/notify"
	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// The guards over removals besides the IMS threshold, course and tutor
// guards (see guard.go), as ctl.guard_event records them.
const (
	GroupDeleteBudget  = "group_delete_budget"  // group sync: groups and groupings deleted per site
	MemberRemoveBudget = "member_remove_budget" // group sync: members removed per site
	GroupMemberDrop    = "group_member_drop"    // group sync: per-group hold of member removals
	Completeness       = "completeness"         // extract: an entity empty or shrunk past its limit
	OneRosterThreshold = "oneroster_threshold"  // OneRoster feed: users and enrollments
	// IDNumberCarry budgets the student codes a profile CSV moves after
	// observed merges (each clears a merged-away account's idnumber): over
	// idnumber_carry_budget they are held back, the rest of the file goes out.
	IDNumberCarry = "idnumber_carry_budget"
)

// SettingCarryBudget is IDNumberCarry's limit, per site and file.
const SettingCarryBudget = "idnumber_carry_budget"

// overrides names each guard's one-shot override (a setting of type
// override: armed with a reason, lapsing after the run that used it).
var overrides = map[string]string{
	Threshold:          "threshold_override",
	TutorThreshold:     "threshold_override", // the tutor table is guarded like memberships
	OneRosterThreshold: "threshold_override", // so are the rosters OneRoster's consumers remove from
	CourseDrop:         "course_drop_override",
	GroupDeleteBudget:  "group_delete_override",
	MemberRemoveBudget: "member_remove_override",
	GroupMemberDrop:    "group_member_drop_override",
	Completeness:       "completeness_override",
	IDNumberCarry:      "idnumber_carry_override",
}

// OverrideOf returns the setting that lets a breach of guard through once;
// a threshold guard not listed is the incumbent's threshold_override.
func OverrideOf(guard string) string {
	if o, ok := overrides[guard]; ok {
		return o
	}
	return "threshold_override"
}

// OverrideHint tells an operator how to let one run through guard.
func OverrideHint(guard string) string {
	return fmt.Sprintf("mim settings set %s true --reason \"...\" (it lapses after the run that uses it, or after override_hours)",
		OverrideOf(guard))
}

// Verdict is one guard's judgement of one set of removals, before any
// override: the budget model every removal goes through (IMS drops, the
// courses' holds, the tutor table, group and member removals, an
// extract's completeness). A breach refuses the whole (or, for a Hold, holds
// back this part while the rest goes ahead) unless the guard's one-shot
// override is armed; each decision is a ctl.guard_event row.
type Verdict struct {
	Guard    string
	Instance string
	// Subject is what was measured (active_memberships, members, a course
	// idnumber, an entity); Previous, Current, Percent and Limit are the
	// figures of ctl.guard_event.
	Subject           string
	Previous, Current int64
	Percent, Limit    float64
	// Breaches say, one sentence each, which limits the removal breaks;
	// none means it is within budget.
	Breaches []string
	// Hold: a breach holds back this part only (a course's drops, a
	// group's removals) instead of refusing everything.
	Hold   bool
	Detail map[string]any
}

// Breached reports whether the removal breaks any limit.
func (v Verdict) Breached() bool { return len(v.Breaches) > 0 }

// Decide settles v inside tx, the transaction that publishes: within
// budget it passes; beyond it, the guard's armed override lets it through
// (spent with tx: its reset commits with the publish, or not at all), and
// otherwise it is refused (held, for a Hold).
func (v Verdict) Decide(ctx context.Context, tx pgx.Tx, runID int64, by string) (string, error) {
	if !v.Breached() {
		return Passed, nil
	}
	used, err := settings.TakeOneShot(ctx, tx, OverrideOf(v.Guard), runID, by)
	switch {
	case err != nil:
		return "", err
	case used:
		return Overridden, nil
	case v.Hold:
		return Held, nil
	}
	return Refused, nil
}

// Would is a dry run's decision, in words: nothing is spent.
func (v Verdict) Would(ctx context.Context, q warehouse.Querier) (string, error) {
	if !v.Breached() {
		return "would pass", nil
	}
	armed, err := settings.Bool(ctx, q, OverrideOf(v.Guard))
	switch {
	case err != nil:
		return "", err
	case armed:
		return fmt.Sprintf("would pass once (%s is armed)", OverrideOf(v.Guard)), nil
	case v.Hold:
		return "would be held", nil
	}
	return "would be refused", nil
}

// Event is v's ctl.guard_event row for decision.
func (v Verdict) Event(runID int64, decision string) Event {
	p, c, pct, lim := v.Previous, v.Current, round2(v.Percent), v.Limit
	d := map[string]any{}
	for k, x := range v.Detail {
		d[k] = x
	}
	if len(v.Breaches) > 0 {
		d["breaches"] = v.Breaches
	}
	if decision == Overridden || decision == Refused || decision == Held {
		d["override"] = OverrideOf(v.Guard)
	}
	return Event{RunID: runID, Instance: v.Instance, Guard: v.Guard, Decision: decision, Subject: v.Subject,
		Previous: &p, Current: &c, Percent: &pct, Limit: &lim, Detail: d}
}

// Describe says what v found and what was decided, in one line.
func (v Verdict) Describe(decision string) string {
	s := fmt.Sprintf("%s: %s", v.Guard, decision)
	if v.Instance != "" {
		s = fmt.Sprintf("%s %s: %s", v.Guard, v.Instance, decision)
	}
	if v.Breached() {
		s += ", " + strings.Join(v.Breaches, "; ")
	}
	switch decision {
	case Overridden:
		s += fmt.Sprintf("; %s let it through once", OverrideOf(v.Guard))
	case Refused, Held:
		s += fmt.Sprintf("; to let it through once: %s", OverrideHint(v.Guard))
	}
	return s
}

// Notice is the mail about a guard's decisions.
type Notice struct {
	Subject, Body string
	// Events are the ctl.guard_event rows the mail is about; they are
	// marked notified once it is sent.
	Events []int64
}

// Mail sends n to threshold_email (or notify.to) when threshold_send_email
// is on, and records that its events were notified. Mail that cannot go
// never stops a guard: the returned note says why none was sent ("" when it
// was).
func Mail(ctx context.Context, q warehouse.Querier, m notify.Mailer, s Settings, n Notice) string {
	switch {
	case !s.SendEmail:
		return "threshold_send_email is off: no mail sent"
	case m == nil:
		return "no mail sent: notify.smtp is not configured"
	}
	if err := m.Send(ctx, notify.Message{To: s.Email, Subject: n.Subject, Body: n.Body}); err != nil {
		return fmt.Sprintf("guard mail not sent: %v", err)
	}
	if err := MarkNotified(ctx, q, n.Events); err != nil {
		return err.Error()
	}
	return ""
}
