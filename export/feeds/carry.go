package feeds

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/export/guard"
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
	event    int64  // its ctl.guard_event
}

// planCarry counts a site's codes to move and decides, inside the feed's
// transaction, whether this file moves them: exports.merge.carry_idnumber
// must be on, and the clears (each takes a code away from an account) stay
// within idnumber_carry_budget unless the armed one-shot
// idnumber_carry_override is spent (never in a dry run): the guard model of
// every removal (guard.Verdict, a Hold). The decision is recorded as a
// guard event when there is anything to move.
func planCarry(ctx context.Context, tx pgx.Tx, site *Site, carry bool, runID int64, by string,
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
	if !carry {
		res.note("exports.merge.carry_idnumber is off: %s not moved to the kept accounts", plural(p.clears, "student code", "student codes"))
		return p, nil
	}
	budget, err := settings.Int(ctx, tx, guard.SettingCarryBudget)
	if err != nil {
		return nil, err
	}
	p.budget = int64(budget)
	v := guard.Verdict{Guard: guard.IDNumberCarry, Instance: site.Name, Subject: "student_codes_moved", Current: p.clears,
		Limit: float64(p.budget), Hold: true,
		Detail: map[string]any{"feed": string(Profile), "clears": p.clears, "sets": p.sets, "blocked": p.blocked}}
	if p.clears > p.budget {
		v.Breaches = []string{fmt.Sprintf("%s to clear from merged-away accounts, more than idnumber_carry_budget (%d)",
			plural(p.clears, "student code", "student codes"), p.budget)}
	}
	if dry {
		would, err := v.Would(ctx, tx)
		if err != nil {
			return nil, err
		}
		p.send = !strings.HasPrefix(would, "would be held")
		res.Decisions = append(res.Decisions, fmt.Sprintf("%s: %s (%s, %d given to kept accounts without one)", guard.IDNumberCarry, would,
			plural(p.clears, "student code", "student codes"), p.sets))
		return p, nil
	}
	if p.decision, err = v.Decide(ctx, tx, runID, by); err != nil {
		return nil, err
	}
	p.send = p.decision != guard.Held
	res.Decisions = append(res.Decisions, fmt.Sprintf("%s (%s to move: %d cleared from merged-away accounts, %d given to kept accounts without one; budget %d)",
		v.Describe(p.decision), plural(p.clears, "student code", "student codes"), p.clears, p.sets, p.budget))
	if p.event, err = guard.Record(ctx, tx, v.Event(runID, p.decision)); err != nil {
		return nil, err
	}
	return p, nil
}

// mailCarry tells the team that student codes were held back over the
// budget, or let through by the override, as every guard's decision is.
func (x *Exporter) mailCarry(ctx context.Context, instance string, p *carryPlan, res *Result) {
	if p.decision != guard.Held && p.decision != guard.Overridden {
		return
	}
	s, err := guard.ReadSettings(ctx, x.pool)
	if err != nil {
		res.note("no mail sent: %v", err)
		return
	}
	subject := fmt.Sprintf("MIM profile CSV of %s: %s held back over idnumber_carry_budget", instance, plural(p.clears, "student code", "student codes"))
	body := fmt.Sprintf("Site: %s\n\nAfter merges Moodle shows done, %s are to be cleared from the merged-away accounts (and %d given to\n"+
		"kept accounts that lack one), more than idnumber_carry_budget (%d). They were held back: the rest of the\n"+
		"profile CSV went out, and the accounts stay as they are (IMS and the tutor table leave those students out\n"+
		"until their code is carried by one account). See mart.exp_idnumber_carry. If the merges are expected:\n  %s\n",
		instance, plural(p.clears, "student code", "student codes"), p.sets, p.budget, guard.OverrideHint(guard.IDNumberCarry))
	if p.decision == guard.Overridden {
		subject = fmt.Sprintf("MIM override used: the profile CSV of %s moved %s despite idnumber_carry_budget", instance,
			plural(p.clears, "student code", "student codes"))
		body = fmt.Sprintf("Site: %s\n\nidnumber_carry_override was armed, so this profile CSV moves %s after observed merges\n"+
			"(more than idnumber_carry_budget, %d); the override has lapsed.\n", instance, plural(p.clears, "student code", "student codes"), p.budget)
	}
	x.send(ctx, s, guard.Notice{Subject: subject, Body: body, Events: []int64{p.event}}, res)
}
