package groupsync

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Setting keys of the delete budget (ctl.settings, migration 00001).
const (
	SettingBudget         = "group_delete_budget"
	SettingBudgetPercent  = "group_delete_budget_percent"
	SettingBudgetOverride = "group_delete_override"
)

// BudgetGuard is the delete budget's name in ctl.guard_event.
const BudgetGuard = "group_delete_budget"

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
func (b Budget) Share() float64 {
	if b.OwnedGroups == 0 {
		return 0
	}
	return 100 * float64(b.GroupDeletes) / float64(b.OwnedGroups)
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

// ReadBudget reads the budget settings and measures plan against them.
func ReadBudget(ctx context.Context, q warehouse.Querier, plan *Plan) (Budget, error) {
	b := Budget{GroupDeletes: plan.Count(DeleteGroup), GroupingDeletes: plan.Count(DeleteGrouping), OwnedGroups: plan.OwnedGroups}
	var err error
	if b.Limit, err = settings.Int(ctx, q, SettingBudget); err != nil {
		return b, err
	}
	if b.LimitPercent, err = settings.Int(ctx, q, SettingBudgetPercent); err != nil {
		return b, err
	}
	return b, nil
}

// Budget decisions, as ctl.guard_event and ctl.group_sync_apply record them.
const (
	BudgetPassed     = "passed"
	BudgetOverridden = "overridden"
	BudgetRefused    = "refused"
)

// decideBudget settles a plan's deletions inside tx: within budget it
// passes; beyond it, group_delete_override lets it through once and is
// reset in tx, else it is refused. The decision is recorded in
// ctl.guard_event. A plan that deletes nothing needs no decision ("").
func decideBudget(ctx context.Context, tx pgx.Tx, runID int64, by string, plan *Plan) (Budget, string, error) {
	b, err := ReadBudget(ctx, tx, plan)
	if err != nil || b.Deletes() == 0 {
		return b, "", err
	}
	decision := BudgetPassed
	over := b.Exceeded()
	if len(over) > 0 {
		used, err := settings.TakeOneShot(ctx, tx, SettingBudgetOverride, runID, by)
		if err != nil {
			return b, "", err
		}
		decision = BudgetRefused
		if used {
			decision = BudgetOverridden
		}
	}
	detail, err := json.Marshal(map[string]any{
		"group_deletes": b.GroupDeletes, "grouping_deletes": b.GroupingDeletes, "owned_groups": b.OwnedGroups,
		"budget": b.Limit, "budget_percent": b.LimitPercent, "exceeded": over, "course_filter": plan.CourseFilter,
	})
	if err != nil {
		return b, "", err
	}
	_, err = tx.Exec(ctx, `INSERT INTO ctl.guard_event (run_id, instance, guard, decision, subject, previous, current, percent, limit_value, detail)
		VALUES ($1, $2, $3, $4, 'deletions', $5, $6, $7, $8, $9)`,
		runID, plan.Instance, BudgetGuard, decision, b.OwnedGroups, b.Deletes(), math.Round(b.Share()*100)/100, b.Limit, detail)
	if err != nil {
		return b, "", fmt.Errorf("recording the delete budget decision for site %s: %w", plan.Instance, err)
	}
	return b, decision, nil
}
