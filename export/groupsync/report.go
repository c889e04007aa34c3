package groupsync

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/envguard"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/moodle"
)

// WritePreview writes a plan as `mim groups plan` shows it: the plan, what
// the environment guard said when asked (guardErr; nothing is recorded)
// and what the budgets would decide.
func WritePreview(ctx context.Context, q warehouse.Querier, w io.Writer, p *Plan, guardErr error, verbose bool) error {
	if err := p.WriteText(w, verbose); err != nil {
		return err
	}
	var re *envguard.RefusedError
	switch {
	case errors.As(guardErr, &re):
		fmt.Fprintf(w, "apply would be REFUSED: %v\n", re)
	case guardErr != nil:
		fmt.Fprintf(w, "apply could not check the site: %v\n", guardErr)
	}
	lines, err := PreviewBudgets(ctx, q, p)
	if err != nil {
		return err
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	return nil
}

// WriteText writes what a sync of one site did, as `mim groups apply`
// shows it: the plan, the guard that passed, the budgets, the result.
func (r *Report) WriteText(w io.Writer, environment string, verbose bool) error {
	if r.Plan != nil {
		if err := r.Plan.WriteText(w, verbose); err != nil {
			return err
		}
		fmt.Fprintf(w, "environment guard passed: environment %s, siteurl %s\n", environment, r.Site.SiteURL)
	}
	for _, l := range r.BudgetLines() {
		fmt.Fprintln(w, l)
	}
	if r.Result != nil {
		return r.Result.WriteText(w)
	}
	return nil
}

// WriteText writes what adopting would do in the course, and what the next
// apply would then do there.
func (p *AdoptPlan) WriteText(w io.Writer) {
	if len(p.Adoptions) == 0 {
		fmt.Fprintf(w, "course %d of site %s: no group or grouping MIM does not own holds a name MIM wants; nothing to adopt\n", p.CourseID, p.Instance)
		return
	}
	for _, ad := range p.Adoptions {
		what := fmt.Sprintf("%s %q (id %d", ad.What, ad.Name, ad.ID)
		if ad.What == "group" {
			what += fmt.Sprintf(", %d members", ad.Members)
		}
		what += ")"
		if ad.Refused != "" {
			fmt.Fprintf(w, "not adopted: %s: %s\n", what, ad.Refused)
			continue
		}
		fmt.Fprintf(w, "adopt %s as %s\n", what, ad.IDNumber)
	}
	if cp := p.After; cp != nil {
		fmt.Fprintf(w, "then the next `mim groups apply` in course %d: %d members to add, %d to remove, %d waiting for their enrolment, %d assignments, %d conflicts left\n",
			p.CourseID, cp.Count(AddMember), cp.Count(RemoveMember), len(cp.Waiting), cp.Count(Assign), len(cp.Conflicts))
	}
}

// SiteSync is one site of a sync over several: its client (or why there is
// none) and its options.
type SiteSync struct {
	Client    *moodle.Client
	ClientErr error
	Options   Options
}

// SyncSites syncs each site in turn (see Sync), writing each one's report
// to w, a blank line between sites. The error joins the failed sites'
// (failed of them), so a refusal (exit 3) outranks a failure; status is the
// run's: partial when every failure was a *PartialError, else what the
// error says.
func SyncSites(ctx context.Context, pool *pgxpool.Pool, g *envguard.Guard, sites []SiteSync, w io.Writer, environment string, verbose bool) (status string, failed int, err error) {
	var errs []error
	partialOnly := true
	for i, s := range sites {
		if i > 0 {
			fmt.Fprintln(w)
		}
		err := s.ClientErr
		if err == nil {
			var rep *Report
			rep, err = Sync(ctx, pool, s.Client, g, s.Options)
			if werr := rep.WriteText(w, environment, verbose); werr != nil {
				return ledger.Failed, 0, werr
			}
		}
		if err != nil {
			var pe *PartialError
			if !errors.As(err, &pe) {
				partialOnly = false
			}
			errs = append(errs, err)
		}
	}
	err = errors.Join(errs...)
	status = ledger.Outcome(err)
	if status == ledger.Failed && partialOnly {
		status = ledger.Partial
	}
	return status, len(errs), err
}
