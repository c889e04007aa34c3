package groupsync

import (
	"fmt"
	"strings"
)

// TargetError says mart.exp_group_target breaks the contract; nothing is
// planned from it.
type TargetError struct {
	Instance string
	Problems []string
}

const maxProblems = 20

func (e *TargetError) add(format string, args ...any) {
	e.Problems = append(e.Problems, fmt.Sprintf(format, args...))
}

func (e *TargetError) Error() string {
	shown := e.Problems
	more := ""
	if len(shown) > maxProblems {
		shown, more = shown[:maxProblems], fmt.Sprintf("; and %d more", len(e.Problems)-maxProblems)
	}
	return fmt.Sprintf("mart.exp_group_target for site %s has %d bad rows, so nothing is planned: %s%s",
		e.Instance, len(e.Problems), strings.Join(shown, "; "), more)
}

// BudgetError is the budgets' refusal: the plan would delete more MIM
// groups and groupings, or remove more members, than the budgets allow
// (group_delete_budget(_percent), member_remove_budget(_percent)), and the
// broken budgets' overrides were not armed. Nothing was written.
type BudgetError struct {
	Instance string
	Budget   Budget       // the delete budget
	Members  MemberBudget // the member budget
	// Breaches are the limits broken, one sentence each; Overrides the
	// settings that would let the plan through once.
	Breaches  []string
	Overrides []string
}

func (e *BudgetError) Error() string {
	hints := make([]string, len(e.Overrides))
	for i, o := range e.Overrides {
		hints[i] = "`mim settings set " + o + " true --reason \"...\"`"
	}
	return fmt.Sprintf("group sync budget: refusing to sync site %s, nothing was written: %s. "+
		"If these removals are expected, let one sync through with %s",
		e.Instance, strings.Join(e.Breaches, " and "), strings.Join(hints, " and "))
}

// ExitCode makes a budget refusal exit 3.
func (e *BudgetError) ExitCode() int { return 3 }

// PartialError says a sync did what it could but not everything: some
// items failed or were not attempted, some courses could not be read (and
// were left alone), or Moodle answered writes it did not make. The Result
// and the Plan say which; the next sync retries from a fresh read of
// Moodle. Writes that took only when sent again (Retried) make the sync
// partial too, though Moodle ends right: the site silently drops part of
// what MIM sends, and a person must fix the site or its settings.
type PartialError struct {
	Instance                    string
	Failed, NotAttempted, Total int
	// Void counts writes Moodle answered but did not apply, even when sent
	// again in small batches.
	Void int
	// Retried counts writes Moodle answered but did not apply that took
	// when sent again in small batches.
	Retried    int
	Unreadable int // courses whose state could not be read
}

func (e *PartialError) Error() string {
	var parts []string
	if e.Failed > 0 || e.NotAttempted > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d writes failed and %d were not attempted", e.Failed, e.Total, e.NotAttempted))
	}
	if e.Void > 0 {
		parts = append(parts, fmt.Sprintf("%d writes Moodle answered without an error did not take, even when sent again "+
			"(check the site's max_input_vars with `mim check`)", e.Void))
	}
	if e.Retried > 0 {
		parts = append(parts, fmt.Sprintf("%d writes Moodle answered without an error took only when sent again in batches of %d: "+
			"the site's PHP max_input_vars is below this site's max_input_vars setting (measure it with `mim check`)", e.Retried, RetryBatch))
	}
	if e.Unreadable > 0 {
		parts = append(parts, fmt.Sprintf("%d courses could not be read and were left alone", e.Unreadable))
	}
	return fmt.Sprintf("group sync of site %s: %s (see the lists above, or ctl.group_sync_action)", e.Instance, strings.Join(parts, "; "))
}
