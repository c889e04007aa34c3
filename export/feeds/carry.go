package feeds

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/export/guard"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/settings"
)

// CarryMart is the relation of the student codes to move after observed
// merges: tool_mergeusers moves no idnumber, so the profile CSV clears the
// merged-away account's and gives the code to the kept account.
const CarryMart = "mart.exp_idnumber_carry"

// carryPlan is what one profile CSV does with the codes to move.
type carryPlan struct {
	clears, sets, blocked int64
	budget                int64
	// send: the carry rows go in this file (with the idnumber column).
	send     bool
	decision string // guard decision; "" when there is nothing to move
}

// planCarry counts a site's codes to move and decides, inside the feed's
// transaction, whether this file moves them: exports.merge.carry_idnumber
// must be on, and the clears (each takes a code away from an account) stay
// within idnumber_carry_budget unless the one-shot idnumber_carry_override
// is spent (never in a dry run). The decision is recorded as a guard event
// when there is anything to move.
func planCarry(ctx context.Context, tx pgx.Tx, site *config.MoodleSite, merge config.Merge, runID int64, by string,
	dry bool, res *Result) (*carryPlan, error) {
	p := &carryPlan{}
	ok, err := martExists(ctx, tx, CarryMart)
	if err != nil || !ok {
		return p, err
	}
	if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE action = 'clear'), count(*) FILTER (WHERE action = 'set'),
			count(*) FILTER (WHERE action = 'blocked')
		FROM `+CarryMart+` WHERE instance = $1`, site.Name).Scan(&p.clears, &p.sets, &p.blocked); err != nil {
		return nil, fmt.Errorf("reading %s for site %s: %w", CarryMart, site.Name, err)
	}
	if p.blocked > 0 {
		res.note("%s after observed merges cannot move (see %s, action blocked)", plural(p.blocked, "student code", "student codes"), CarryMart)
	}
	if p.clears+p.sets == 0 {
		return p, nil
	}
	if !merge.Carry() {
		res.note("exports.merge.carry_idnumber is off: %s not moved to the kept accounts", plural(p.clears, "student code", "student codes"))
		return p, nil
	}
	budget, err := settings.Int(ctx, tx, guard.SettingCarryBudget)
	if err != nil {
		return nil, err
	}
	p.budget = int64(budget)
	switch {
	case p.clears <= p.budget:
		p.decision, p.send = guard.Passed, true
	case dry:
		armed, err := settings.Bool(ctx, tx, guard.SettingCarryOverride)
		if err != nil {
			return nil, err
		}
		p.decision, p.send = guard.Held, armed
		if armed {
			p.decision = guard.Overridden
		}
	default:
		used, err := settings.TakeOneShot(ctx, tx, guard.SettingCarryOverride, runID, by)
		if err != nil {
			return nil, err
		}
		p.decision, p.send = guard.Held, used
		if used {
			p.decision = guard.Overridden
		}
	}
	text := fmt.Sprintf("%s: %s, %s to move (cleared from merged-away accounts; %d given to kept accounts without one), budget %d",
		guard.IDNumberCarry, p.decision, plural(p.clears, "student code", "student codes"), p.sets, p.budget)
	switch p.decision {
	case guard.Held:
		text += "; held back this time (the rest of the file goes out); to let them through once: " +
			"mim settings set " + guard.SettingCarryOverride + " true"
	case guard.Overridden:
		text += "; " + guard.SettingCarryOverride + " let them through once"
	}
	if dry {
		text = "would be " + text
	}
	res.Decisions = append(res.Decisions, text)
	if dry {
		return p, nil
	}
	limit := float64(p.budget)
	_, err = guard.Record(ctx, tx, guard.Event{RunID: runID, Instance: site.Name, Guard: guard.IDNumberCarry, Decision: p.decision,
		Subject: "student_codes_moved", Current: &p.clears, Limit: &limit,
		Detail: map[string]any{"feed": string(Profile), "clears": p.clears, "sets": p.sets, "blocked": p.blocked}})
	return p, err
}
