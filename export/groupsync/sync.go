// Package groupsync puts CMIS timetable groups into Moodle through its web
// services, guarded: it compares the desired groups (mart.exp_group_target)
// with what the site has now, read in the same run, and applies the
// difference in small checked batches. It touches only groups and
// groupings whose idnumber carries the site's prefix, only in group-sync
// courses, never without the environment guard's permit, and never removes
// beyond its budgets (groups and groupings deleted, members removed per site
// and per group) unless the budget's one-shot override is spent.
package groupsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/export/guard"
	"github.com/mimwarehouse/mim/internal/envguard"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/notify"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/moodle"
)

// Stage is the ledger stage of group sync.
const Stage = "groups"

// recordTimeout bounds the writes that record an apply, made even after
// the apply's own context ended, so an interrupted apply is recorded.
const recordTimeout = 30 * time.Second

// Site is what group sync knows of a Moodle site (moodle[] in the
// configuration): who it is for the environment guard, the prefix of the
// idnumbers MIM owns, and how hard it may be read.
type Site struct {
	Name        string
	URL         string
	Environment string
	// GroupPrefix marks the idnumbers of groups and groupings MIM owns.
	GroupPrefix string
	// Concurrency is how many courses are read at once; PageSize the
	// enrolled users per request (0: a course's users in one request).
	Concurrency int
	PageSize    int
	// ReadsDatabase says the night reads the site from its database (kind
	// moodle-db): that read, when it is of the sync's run, stands in for
	// reading the courses' groups and members over the web services.
	ReadsDatabase bool
}

// Guard is the site as the environment guard sees it.
func (s *Site) Guard() envguard.Site {
	return envguard.Site{Name: s.Name, URL: s.URL, Environment: s.Environment}
}

// Options say which site to sync.
type Options struct {
	// Site is the site synced.
	Site *Site
	// CourseID limits the sync to one Moodle course (0: every group-sync
	// course of the site).
	CourseID int64
	// Run is the ledger run the sync belongs to; Sync needs one.
	Run *ledger.Run
	// By names who spends an override, for the settings history.
	By string
	// Mailer, if set, is sent the guards' refusals, holds and overrides
	// (to threshold_email, or notify.to, when threshold_send_email is on).
	Mailer notify.Mailer
	// Logger receives progress (default: discard).
	Logger *slog.Logger
}

func (o *Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// BuildPlan reads the site's desired groups from the warehouse and its
// actual groups from Moodle now, through c, and compares them. It writes
// nothing anywhere.
func BuildPlan(ctx context.Context, q warehouse.Querier, c *moodle.Client, o Options) (*Plan, error) {
	t, a, rr, err := load(ctx, q, c, o)
	if err != nil {
		return nil, err
	}
	p := MakePlan(t, a, o.Site.GroupPrefix)
	p.CourseFilter = o.CourseID
	p.Read = *rr
	return p, nil
}

// load reads the site's target from the warehouse and the state of its
// group-sync courses from Moodle now.
func load(ctx context.Context, q warehouse.Querier, c *moodle.Client, o Options) (*Target, *Actual, *RunRead, error) {
	site := o.Site
	t, err := LoadTarget(ctx, q, site.Name, site.GroupPrefix, o.CourseID)
	if err != nil {
		return nil, nil, nil, err
	}
	ids := make([]int64, len(t.Courses))
	for i, ct := range t.Courses {
		ids[i] = ct.CourseID
	}
	start := time.Now()
	var runID int64
	if o.Run != nil {
		runID = o.Run.ID
	}
	a, rest, rr, err := readFromRun(ctx, q, site, runID, ids)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(rest) > 0 || a == nil { // nothing read from the run: Moodle now, even for no course
		ws := ReadActual(ctx, c, rest, ReadOptions{Prefix: site.GroupPrefix, Concurrency: site.Concurrency, PageSize: site.PageSize})
		if err := ctx.Err(); err != nil {
			return nil, nil, nil, fmt.Errorf("reading the groups of site %s: %w", site.Name, err)
		}
		a = merged(a, ws)
	}
	o.logger().Info("read the group-sync courses", "stage", Stage, "instance", site.Name,
		"courses", len(ids), "from_database_read", rr.Courses, "over_web_services", len(rest), "unreadable", len(a.Unreadable),
		"duration", time.Since(start).Round(time.Millisecond))
	if rr.Reason != "" && site.ReadsDatabase {
		o.logger().Info("group sync reads courses over the web services", "stage", Stage, "instance", site.Name, "reason", rr.Reason)
	}
	return t, a, &rr, nil
}

// merged adds b's courses to a (nil: none).
func merged(a, b *Actual) *Actual {
	if a == nil {
		return b
	}
	maps.Copy(a.Courses, b.Courses)
	maps.Copy(a.Unreadable, b.Unreadable)
	return a
}

// Report is what a sync of one site did.
type Report struct {
	Instance       string
	Site           *moodle.SiteInfo // who the site said it is; nil if not asked
	Plan           *Plan            // nil when the sync stopped before planning
	Budget         Budget
	BudgetDecision string // the delete budget's: "", passed, overridden or refused
	// Decisions are every budget's (nil when the sync stopped before).
	Decisions *Decisions
	Result    *Result // nil when nothing was applied
	// Notes say what else happened (mail not sent, ...).
	Notes []string
}

// Sync runs one site's group sync as a step of o.Run: the environment
// guard (a refusal is recorded in ctl.guard_event and is an
// *envguard.RefusedError), the plan, the delete budget (a refusal is a
// *BudgetError; an override is spent in the transaction that records the
// apply), then the apply, recorded item by item in ctl.group_sync_action.
// The error is a *PartialError when some items failed.
func Sync(ctx context.Context, pool *pgxpool.Pool, c *moodle.Client, g *envguard.Guard, o Options) (*Report, error) {
	if o.Run == nil || o.Site == nil {
		return nil, errors.New("group sync: a run and a site are required")
	}
	rep := &Report{Instance: o.Site.Name}
	step, err := o.Run.Step(ctx, ledger.StepKey{Stage: Stage, Source: "moodle", Instance: o.Site.Name, Entity: "apply"})
	if err != nil {
		return rep, err
	}
	err = syncSite(ctx, pool, c, g, o, rep)
	status := ledger.Outcome(err)
	var pe *PartialError
	if errors.As(err, &pe) {
		status = ledger.Partial
	}
	counts, detail := stepSummary(rep)
	if ferr := step.Finish(ctx, status, counts, detail, err); ferr != nil && err == nil {
		err = ferr
	}
	return rep, err
}

func syncSite(ctx context.Context, pool *pgxpool.Pool, c *moodle.Client, g *envguard.Guard, o Options, rep *Report) error {
	log := o.logger().With("stage", Stage, "instance", o.Site.Name, "run_id", o.Run.ID)
	permit, info, err := g.WebServices(ctx, o.Site.Guard(), c)
	rep.Site = info
	if err != nil {
		if rerr := envguard.Record(ctx, pool, o.Run.ID, err); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	plan, err := BuildPlan(ctx, pool, c, o)
	if err != nil {
		return err
	}
	rep.Plan = plan
	if missing := info.Missing(plan.Functions()...); len(missing) > 0 {
		return fmt.Errorf("group sync of site %s: the token's service lacks %s; nothing was written (add them to the external service)",
			o.Site.Name, strings.Join(missing, ", "))
	}

	// One transaction records the apply and settles its removals: an
	// override is spent exactly when an apply that needed it is recorded.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		planned, _ := json.Marshal(plan.Counts())
		if _, err := tx.Exec(ctx, `INSERT INTO ctl.group_sync_apply (run_id, instance, course_filter, planned, waiting, conflicts, unreadable)
			VALUES ($1, $2, NULLIF($3, 0), $4, $5, $6, $7)`,
			o.Run.ID, plan.Instance, plan.CourseFilter, planned, plan.Waiting(), plan.Conflicts(), len(plan.Unreadable)); err != nil {
			return fmt.Errorf("recording the group sync of site %s: %w", plan.Instance, err)
		}
		d, err := decideBudgets(ctx, tx, o.Run.ID, o.By, plan)
		if err != nil {
			return err
		}
		rep.Decisions, rep.Budget, rep.BudgetDecision = d, d.Budgets.Delete, d.Delete
		overall := d.overall()
		if overall == "" {
			return nil
		}
		status := "running"
		if d.Refused() {
			status = "refused"
		}
		_, err = tx.Exec(ctx, `UPDATE ctl.group_sync_apply SET budget_decision = $3, status = $4,
			finished_at = CASE WHEN $4 = 'refused' THEN now() END WHERE run_id = $1 AND instance = $2`,
			o.Run.ID, plan.Instance, overall, status)
		return err
	})
	if err != nil {
		return err
	}
	d := rep.Decisions
	if n := d.notice(plan.Instance, o.Run.ID); n.Subject != "" {
		s, err := guard.ReadSettings(ctx, pool)
		if err == nil {
			if note := guard.Mail(ctx, pool, o.Mailer, s, n); note != "" {
				rep.Notes = append(rep.Notes, note)
			}
		} else {
			rep.Notes = append(rep.Notes, "guard mail not sent: "+err.Error())
		}
	}
	if d.Refused() {
		be := &BudgetError{Instance: plan.Instance, Budget: d.Budgets.Delete, Members: d.Budgets.Members, Breaches: d.Breaches}
		if d.Delete == guard.Refused {
			be.Overrides = append(be.Overrides, guard.OverrideOf(guard.GroupDeleteBudget))
		}
		if d.Members == guard.Refused {
			be.Overrides = append(be.Overrides, guard.OverrideOf(guard.MemberRemoveBudget))
		}
		return be
	}
	for _, v := range d.verdicts {
		if v.decision == guard.Overridden {
			log.Warn("budget exceeded; override spent", "guard", v.verdict.Guard, "override", guard.OverrideOf(v.verdict.Guard))
		}
	}

	record := func(ctx context.Context, acts []Action) error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
		return recordActions(ctx, pool, o.Run.ID, plan.Instance, acts)
	}
	res, err := Apply(ctx, c, permit, plan, ApplyOptions{Record: record, Parallel: o.Site.Concurrency, PageSize: o.Site.PageSize})
	rep.Result = res
	if n := len(plan.Unreadable); n > 0 {
		var pe *PartialError
		switch {
		case err == nil:
			err = &PartialError{Instance: plan.Instance, Total: len(res.Actions), Unreadable: n}
		case errors.As(err, &pe):
			pe.Unreadable = n
		}
	}
	log.Info("applied the group plan", "writes", len(res.Actions), "applied", res.Total(Applied),
		"failed", res.Total(Failed), "not_attempted", res.Total(NotAttempted), "void", len(res.Retries),
		"void_after_retry", res.VoidRetries(), "requests", res.Requests)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if ferr := finishApply(fctx, pool, o.Run.ID, res, err); ferr != nil {
		return errors.Join(err, ferr)
	}
	return err
}

// actionColumns are the columns recordActions fills.
var actionColumns = []string{"run_id", "instance", "courseid", "course_idnumber", "action", "idnumber", "name",
	"group_id", "grouping_id", "grouping_idnumber", "userid", "user_idnumber", "outcome", "error", "answer", "retry"}

// recordActions appends actions to ctl.group_sync_action in one COPY.
func recordActions(ctx context.Context, pool *pgxpool.Pool, runID int64, instance string, acts []Action) error {
	rows := make([][]any, len(acts))
	for i, a := range acts {
		var answer any
		if len(a.Answer) > 0 {
			answer = string(a.Answer)
		}
		var errText any
		if a.Outcome != Applied {
			e := a.Error
			if e == "" {
				e = string(a.Outcome)
			}
			errText = e
		}
		idn, name := a.Group.IDNumber, a.Group.Name
		if a.Kind == CreateGrouping || a.Kind == DeleteGrouping {
			idn, name = a.Grouping.IDNumber, a.Grouping.Name
		}
		rows[i] = []any{runID, instance, a.CourseID, a.CourseIDNumber, string(a.Kind), idn, name,
			positive(a.Group.ID), positive(a.Grouping.ID), a.Grouping.IDNumber, positive(a.User.UserID), a.User.UserIDNumber,
			string(a.Outcome), errText, answer, a.Retry}
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"ctl", "group_sync_action"}, actionColumns, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("recording %d group changes of site %s: %w", len(acts), instance, err)
	}
	return nil
}

// positive stores ids: an id that is not a Moodle id is never stored.
func positive(id int64) *int64 {
	if id <= 0 {
		return nil
	}
	return &id
}

// finishApply closes the apply's record with its outcome.
func finishApply(ctx context.Context, q warehouse.Querier, runID int64, res *Result, applyErr error) error {
	status := "succeeded"
	var pe *PartialError
	switch {
	case errors.As(applyErr, &pe):
		status = "partial"
	case applyErr != nil:
		status = "failed"
	}
	applied := map[string]map[Outcome]int{}
	for _, a := range res.all() {
		if applied[string(a.Kind)] == nil {
			applied[string(a.Kind)] = map[Outcome]int{}
		}
		applied[string(a.Kind)][a.Outcome]++
	}
	j, _ := json.Marshal(applied)
	var errText *string
	if applyErr != nil {
		s := applyErr.Error()
		errText = &s
	}
	if _, err := q.Exec(ctx, `UPDATE ctl.group_sync_apply SET status = $3, applied = $4, error = $5, finished_at = now()
		WHERE run_id = $1 AND instance = $2`, runID, res.Instance, status, j, errText); err != nil {
		return fmt.Errorf("recording the end of the group sync of site %s: %w", res.Instance, err)
	}
	return nil
}

// stepSummary gives the ledger step's counts and detail.
func stepSummary(rep *Report) (ledger.Counts, map[string]any) {
	var c ledger.Counts
	detail := map[string]any{}
	if rep.Site != nil {
		detail["siteurl"] = rep.Site.SiteURL
	}
	if p := rep.Plan; p != nil {
		c.In = int64(p.Writes())
		detail["courses_changed"] = len(p.Courses)
		detail["planned"] = p.Counts()
		detail["waiting"] = p.Waiting()
		detail["conflicts"] = p.Conflicts()
		detail["unreadable"] = len(p.Unreadable)
		detail["owned_groups"] = p.OwnedGroups
		if r := p.Read; r.Courses > 0 || r.Reason != "" {
			detail["actual_from_database_read"] = map[string]any{"run": r.RunID, "courses": r.Courses, "note": r.Reason}
		}
	}
	if rep.BudgetDecision != "" {
		detail["budget"] = map[string]any{"decision": rep.BudgetDecision, "deletes": rep.Budget.Deletes(),
			"limit": rep.Budget.Limit, "share": rep.Budget.Share(), "limit_percent": rep.Budget.LimitPercent}
	}
	if d := rep.Decisions; d != nil && d.Members != "" {
		m := d.Budgets.Members
		detail["member_budget"] = map[string]any{"decision": d.Members, "removes": m.Removes, "owned_members": m.OwnedMembers,
			"limit": m.Limit, "share": m.Share(), "limit_percent": m.LimitPercent}
	}
	if p := rep.Plan; p != nil {
		if held := p.Held(); len(held) > 0 {
			hs := make([]string, len(held))
			for i, h := range held {
				hs[i] = fmt.Sprintf("%s %s: %d of %d members", h.CourseIDNumber, h.Group.IDNumber, h.Removes, h.Members)
			}
			detail["held_groups"] = hs
		}
	}
	if len(rep.Notes) > 0 {
		detail["notes"] = rep.Notes
	}
	if r := rep.Result; r != nil {
		// A write that did not take is counted by its retry.
		for _, a := range r.all() {
			switch {
			case a.Outcome == Void && !a.Retry:
			case a.Outcome != Applied:
				c.Errors++
			case a.Kind == CreateGroup || a.Kind == CreateGrouping || a.Kind == Assign || a.Kind == AddMember:
				c.New++
			default:
				c.Deleted++
			}
		}
		detail["requests"] = r.Requests
		if len(r.Retries) > 0 {
			detail["void"] = len(r.Retries)
			detail["void_after_retry"] = r.VoidRetries()
		}
		if r.Unverified > 0 {
			detail["unverified"] = r.Unverified
		}
	}
	return c, detail
}
