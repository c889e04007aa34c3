package groupsync

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/export/guard"
	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Setting keys of group sync's budgets (ctl.settings, migrations 00001 and
// 00080). Every removal group sync makes is budgeted: groups and groupings
// deleted, and members removed (per site, and per group).
const (
	SettingBudget               = "group_delete_budget"
	SettingBudgetPercent        = "group_delete_budget_percent"
	SettingBudgetOverride       = "group_delete_override"
	SettingMemberBudget         = "member_remove_budget"
	SettingMemberBudgetPercent  = "member_remove_budget_percent"
	SettingGroupMemberDropLimit = "group_member_drop_percent"
)

// BudgetGuard is the delete budget's name in ctl.guard_event.
const BudgetGuard = guard.GroupDeleteBudget

// minHeldRemovals: a group losing a single member is never held back, so
// one student moving group, the everyday change, always goes through.
const minHeldRemovals = 2

// minSharedRemovals: fewer removals than this are never refused for their
// share alone, so a small site's everyday changes are not (the count
// budget and the per-group hold still apply).
const minSharedRemovals = 10

// Budget compares a plan's deletions with the delete budget.
type Budget struct {
	GroupDeletes    int
	GroupingDeletes int
	OwnedGroups     int // MIM-owned groups in the courses read: the share's base
	Limit           int // group_delete_budget: most groups plus groupings
	LimitPercent    int // group_delete_budget_percent: most share of OwnedGroups
}

// Deletes counts the groups and groupings the plan deletes.
func (b Budget) Deletes() int { return b.GroupDeletes + b.GroupingDeletes }

// Share is the percentage of the MIM-owned groups the plan deletes.
func (b Budget) Share() float64 { return percent(b.GroupDeletes, b.OwnedGroups) }

// percent is part as a percentage of whole (0 of nothing).
func percent(part, whole int) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}

// Exceeded says which limits the plan breaks (none: within budget).
func (b Budget) Exceeded() []string {
	var out []string
	if b.Deletes() > b.Limit {
		out = append(out, fmt.Sprintf("it would delete %d groups and groupings (%d + %d), more than group_delete_budget %d",
			b.Deletes(), b.GroupDeletes, b.GroupingDeletes, b.Limit))
	}
	if b.GroupDeletes*100 > b.LimitPercent*b.OwnedGroups {
		out = append(out, fmt.Sprintf("it would delete %d of the %d groups MIM owns in the courses read (%.1f%%), more than group_delete_budget_percent %d%%",
			b.GroupDeletes, b.OwnedGroups, b.Share(), b.LimitPercent))
	}
	return out
}

// Verdict is the delete budget's judgement, for the guard model.
func (b Budget) Verdict(instance string, courseFilter int64) guard.Verdict {
	return guard.Verdict{Guard: guard.GroupDeleteBudget, Instance: instance, Subject: "deletions",
		Previous: int64(b.OwnedGroups), Current: int64(b.Deletes()), Percent: b.Share(), Limit: float64(b.Limit),
		Breaches: b.Exceeded(), Detail: map[string]any{
			"group_deletes": b.GroupDeletes, "grouping_deletes": b.GroupingDeletes, "owned_groups": b.OwnedGroups,
			"budget": b.Limit, "budget_percent": b.LimitPercent, "course_filter": courseFilter}}
}

// MemberBudget compares a plan's member removals with the member budget.
type MemberBudget struct {
	Removes      int // members the plan removes from groups that stay
	OwnedMembers int // members of the MIM-owned groups in the courses read
	Limit        int // member_remove_budget
	LimitPercent int // member_remove_budget_percent
}

// Share is the percentage of the owned members the plan removes.
func (b MemberBudget) Share() float64 { return percent(b.Removes, b.OwnedMembers) }

// Exceeded says which limits the removals break (none: within budget).
func (b MemberBudget) Exceeded() []string {
	var out []string
	if b.Removes > b.Limit {
		out = append(out, fmt.Sprintf("it would remove %d group members, more than member_remove_budget %d", b.Removes, b.Limit))
	}
	if b.Removes >= minSharedRemovals && b.Removes*100 > b.LimitPercent*b.OwnedMembers {
		out = append(out, fmt.Sprintf("it would remove %d of the %d members of the groups MIM owns in the courses read (%.1f%%), more than member_remove_budget_percent %d%%",
			b.Removes, b.OwnedMembers, b.Share(), b.LimitPercent))
	}
	return out
}

// Verdict is the member budget's judgement, for the guard model.
func (b MemberBudget) Verdict(instance string, courseFilter int64) guard.Verdict {
	return guard.Verdict{Guard: guard.MemberRemoveBudget, Instance: instance, Subject: "members",
		Previous: int64(b.OwnedMembers), Current: int64(b.OwnedMembers - b.Removes), Percent: b.Share(), Limit: float64(b.LimitPercent),
		Breaches: b.Exceeded(), Detail: map[string]any{"removes": b.Removes, "owned_members": b.OwnedMembers,
			"budget": b.Limit, "budget_percent": b.LimitPercent, "course_filter": courseFilter}}
}

// GroupLoss is what one MIM group that stays would lose.
type GroupLoss struct {
	CourseID       int64
	CourseIDNumber string
	Group          Ref
	Members        int // its members in Moodle now
	Removes        int // of them, those the plan removes
}

// Percent is the share of the group's members removed.
func (l GroupLoss) Percent() float64 { return percent(l.Removes, l.Members) }

// Verdict is the per-group hold's judgement of one group's removals.
func (l GroupLoss) Verdict(instance string, limit int) guard.Verdict {
	v := guard.Verdict{Guard: guard.GroupMemberDrop, Instance: instance, Subject: l.Group.IDNumber, Hold: true,
		Previous: int64(l.Members), Current: int64(l.Members - l.Removes), Percent: l.Percent(), Limit: float64(limit),
		Detail: map[string]any{"course": l.CourseIDNumber, "courseid": l.CourseID, "group": l.Group.Name, "group_id": l.Group.ID,
			"members": l.Members, "removes": l.Removes}}
	if l.Removes >= minHeldRemovals && l.Removes*100 > limit*l.Members {
		v.Breaches = []string{fmt.Sprintf("group %q (%s) of course %s would lose %d of its %d members (%.0f%%), more than group_member_drop_percent %d%%",
			l.Group.Name, l.Group.IDNumber, l.CourseIDNumber, l.Removes, l.Members, l.Percent(), limit)}
	}
	return v
}

// ownedMembers counts the members of the MIM-owned groups of a course.
func ownedMembers(st *CourseState, prefix string) int {
	n := 0
	for _, g := range st.Groups {
		if strings.HasPrefix(g.IDNumber, prefix) {
			n += len(g.Members)
		}
	}
	return n
}

// groupLosses measures the member removals of a course's ops, group by group.
func groupLosses(ops []Op, st *CourseState) []GroupLoss {
	byGroup := map[int64]*GroupLoss{}
	var order []int64
	for _, op := range ops {
		if op.Kind != RemoveMember {
			continue
		}
		l := byGroup[op.Group.ID]
		if l == nil {
			l = &GroupLoss{CourseID: op.CourseID, CourseIDNumber: op.CourseIDNumber, Group: op.Group}
			for _, g := range st.Groups {
				if g.ID == op.Group.ID {
					l.Members = len(g.Members)
				}
			}
			byGroup[op.Group.ID] = l
			order = append(order, op.Group.ID)
		}
		l.Removes++
	}
	out := make([]GroupLoss, len(order))
	for i, id := range order {
		out[i] = *byGroup[id]
	}
	return out
}

// Budgets are every limit a plan's removals are measured against.
type Budgets struct {
	Delete           Budget
	Members          MemberBudget
	GroupDropPercent int
}

// ReadBudget reads the delete budget's settings and measures plan against
// them.
func ReadBudget(ctx context.Context, q warehouse.Querier, plan *Plan) (Budget, error) {
	b, err := ReadBudgets(ctx, q, plan)
	return b.Delete, err
}

// ReadBudgets reads every budget setting and measures plan against them.
func ReadBudgets(ctx context.Context, q warehouse.Querier, plan *Plan) (Budgets, error) {
	b := Budgets{
		Delete:  Budget{GroupDeletes: plan.Count(DeleteGroup), GroupingDeletes: plan.Count(DeleteGrouping), OwnedGroups: plan.OwnedGroups},
		Members: MemberBudget{Removes: plan.Count(RemoveMember), OwnedMembers: plan.OwnedMembers},
	}
	for _, s := range []struct {
		key string
		v   *int
	}{{SettingBudget, &b.Delete.Limit}, {SettingBudgetPercent, &b.Delete.LimitPercent}, {SettingMemberBudget, &b.Members.Limit},
		{SettingMemberBudgetPercent, &b.Members.LimitPercent}, {SettingGroupMemberDropLimit, &b.GroupDropPercent}} {
		var err error
		if *s.v, err = settings.Int(ctx, q, s.key); err != nil {
			return b, err
		}
	}
	return b, nil
}

// Budget decisions, as ctl.guard_event and ctl.group_sync_apply record them.
const (
	BudgetPassed     = guard.Passed
	BudgetOverridden = guard.Overridden
	BudgetRefused    = guard.Refused
)

// decision is one guard's verdict on a plan and what was decided.
type decision struct {
	verdict  guard.Verdict
	decision string
	event    int64
}

// Decisions are what the budgets decided about one plan.
type Decisions struct {
	Budgets Budgets
	// Delete and Members are the site budgets' decisions ("" when the plan
	// deletes or removes nothing); Holds the per-group holds' ("" when no
	// group breaks its limit).
	Delete, Members, Holds string
	// Breaches are the sentences of every limit broken.
	Breaches []string
	// Events are the ctl.guard_event rows written.
	Events   []int64
	verdicts []decision
}

// Refused reports whether the plan may not be applied.
func (d *Decisions) Refused() bool { return d.Delete == guard.Refused || d.Members == guard.Refused }

// overall is the decision ctl.group_sync_apply keeps ("" when nothing was
// decided): refused, else overridden, else passed.
func (d *Decisions) overall() string {
	out := ""
	for _, v := range d.verdicts {
		switch {
		case v.decision == guard.Refused:
			return guard.Refused
		case v.decision == guard.Overridden:
			out = guard.Overridden
		case out == "":
			out = guard.Passed
		}
	}
	return out
}

// decideBudgets settles a plan's removals inside tx: the site's delete and
// member budgets first; the plan is refused whole when either is broken
// and its override is not armed (no override is spent on a refused plan);
// otherwise the per-group holds take out the removals of the groups that
// would lose too much, unless group_member_drop_override is armed. Every
// decision is recorded in ctl.guard_event.
func decideBudgets(ctx context.Context, tx pgx.Tx, runID int64, by string, plan *Plan) (*Decisions, error) {
	b, err := ReadBudgets(ctx, tx, plan)
	if err != nil {
		return nil, err
	}
	d := &Decisions{Budgets: b}
	var site []guard.Verdict
	if b.Delete.Deletes() > 0 {
		site = append(site, b.Delete.Verdict(plan.Instance, plan.CourseFilter))
	}
	if b.Members.Removes > 0 {
		site = append(site, b.Members.Verdict(plan.Instance, plan.CourseFilter))
	}
	// Refused unless every broken budget's override is armed.
	refuse := false
	for _, v := range site {
		if !v.Breached() {
			continue
		}
		ok, err := settings.OneShotAvailable(ctx, tx, guard.OverrideOf(v.Guard), runID)
		if err != nil {
			return nil, err
		}
		refuse = refuse || !ok
	}
	for _, v := range site {
		dec := guard.Passed
		switch {
		case v.Breached() && refuse:
			dec = guard.Refused
		case v.Breached():
			if dec, err = v.Decide(ctx, tx, runID, by); err != nil {
				return nil, err
			}
		}
		if err := d.record(ctx, tx, runID, v, dec); err != nil {
			return nil, err
		}
		if v.Guard == guard.GroupDeleteBudget {
			d.Delete = dec
		} else {
			d.Members = dec
		}
	}
	if refuse {
		return d, nil
	}
	for i := range plan.Courses {
		cp := &plan.Courses[i]
		held := map[int64]bool{}
		for _, l := range cp.Losses {
			v := l.Verdict(plan.Instance, b.GroupDropPercent)
			if !v.Breached() {
				continue
			}
			dec, err := v.Decide(ctx, tx, runID, by)
			if err != nil {
				return nil, err
			}
			if err := d.record(ctx, tx, runID, v, dec); err != nil {
				return nil, err
			}
			d.Holds = dec
			if dec == guard.Held {
				held[l.Group.ID] = true
				cp.Held = append(cp.Held, l)
			}
		}
		if len(held) > 0 {
			kept := cp.Ops[:0:0]
			for _, op := range cp.Ops {
				if op.Kind != RemoveMember || !held[op.Group.ID] {
					kept = append(kept, op)
				}
			}
			cp.Ops = kept
		}
	}
	return d, nil
}

func (d *Decisions) record(ctx context.Context, tx pgx.Tx, runID int64, v guard.Verdict, dec string) error {
	id, err := guard.Record(ctx, tx, v.Event(runID, dec))
	if err != nil {
		return err
	}
	d.verdicts = append(d.verdicts, decision{verdict: v, decision: dec, event: id})
	d.Events = append(d.Events, id)
	if dec == guard.Refused || dec == guard.Held {
		d.Breaches = append(d.Breaches, v.Breaches...)
	}
	return nil
}

// Held lists the groups whose removals the plan holds back.
func (p *Plan) Held() []GroupLoss {
	var out []GroupLoss
	for i := range p.Courses {
		out = append(out, p.Courses[i].Held...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Group.IDNumber < out[j].Group.IDNumber })
	return out
}

// notice is the mail about the decisions that need a person: refusals,
// holds and overrides used ("" subject: none).
func (d *Decisions) notice(instance string, runID int64) guard.Notice {
	var b strings.Builder
	var ids []int64
	refused, held, overridden := 0, 0, 0
	for _, v := range d.verdicts {
		switch v.decision {
		case guard.Refused:
			refused++
		case guard.Held:
			held++
		case guard.Overridden:
			overridden++
		default:
			continue
		}
		ids = append(ids, v.event)
		fmt.Fprintf(&b, "  %s\n", v.verdict.Describe(v.decision))
	}
	if len(ids) == 0 {
		return guard.Notice{}
	}
	var subject string
	switch {
	case refused > 0:
		subject = fmt.Sprintf("MIM group sync of %s refused: it would remove too much", instance)
	case held > 0:
		subject = fmt.Sprintf("MIM group sync of %s: member removals held back in %d groups", instance, held)
	default:
		subject = fmt.Sprintf("MIM group sync of %s went beyond its budget on an override", instance)
	}
	body := fmt.Sprintf("Site: %s\nRun: %d\n\n%s\n", instance, runID, b.String())
	if refused > 0 {
		body += "Nothing was written to Moodle. Check the CMIS data and the course mappings first: an emptied view or\n" +
			"a wrong mapping looks exactly like this.\n"
	}
	return guard.Notice{Subject: subject, Body: body, Events: ids}
}

// PreviewBudgets says what the budgets would decide about plan, spending
// and recording nothing (`mim groups plan`).
func PreviewBudgets(ctx context.Context, q warehouse.Querier, plan *Plan) ([]string, error) {
	b, err := ReadBudgets(ctx, q, plan)
	if err != nil {
		return nil, err
	}
	var vs []guard.Verdict
	if b.Delete.Deletes() > 0 {
		vs = append(vs, b.Delete.Verdict(plan.Instance, plan.CourseFilter))
	}
	if b.Members.Removes > 0 {
		vs = append(vs, b.Members.Verdict(plan.Instance, plan.CourseFilter))
	}
	for i := range plan.Courses {
		for _, l := range plan.Courses[i].Losses {
			if v := l.Verdict(plan.Instance, b.GroupDropPercent); v.Breached() {
				vs = append(vs, v)
			}
		}
	}
	var out []string
	for _, v := range vs {
		would, err := v.Would(ctx, q)
		if err != nil {
			return nil, err
		}
		line := fmt.Sprintf("%s: %s", v.Guard, would)
		if v.Breached() {
			line += ": " + strings.Join(v.Breaches, "; ")
		} else {
			line += fmt.Sprintf(" (%s: %d of %d)", v.Subject, v.Previous-v.Current, v.Previous)
			if v.Guard == guard.GroupDeleteBudget {
				line = fmt.Sprintf("%s: would pass (%d groups and groupings deleted of %d MIM groups; limits %d and %d%%)",
					v.Guard, b.Delete.Deletes(), b.Delete.OwnedGroups, b.Delete.Limit, b.Delete.LimitPercent)
			}
		}
		out = append(out, line)
	}
	return out, nil
}
