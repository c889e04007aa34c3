package night

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/export/groupsync"
	"github.com/mimwarehouse/mim/internal/catalog"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/envguard"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/mapping"
	"github.com/mimwarehouse/mim/internal/martcount"
	"github.com/mimwarehouse/mim/internal/notify"
	"github.com/mimwarehouse/mim/internal/pipeline"
	"github.com/mimwarehouse/mim/internal/progress"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/moodle"
	"github.com/mimwarehouse/mim/transform"
)

// TransformHooks are the Go steps a transform runs between layers: the
// configuration the marts read (group prefixes, IMS roletypes), the marts'
// counts, then the course mappings derived by rule.
func TransformHooks(cfg *config.Config, by string, runID int64) []transform.Hook {
	hooks := []transform.Hook{wire.MartConfigHook(cfg), martcount.Hook(runID)}
	if len(cfg.Mappings.Rules) == 0 {
		return hooks
	}
	return append(hooks, transform.Hook{
		Name:  "derive course mappings",
		After: "staging",
		Run: func(ctx context.Context, tx pgx.Tx) (string, error) {
			res, err := mapping.Derive(ctx, tx, cfg.Mappings.Rules, by)
			return res.String(), err
		},
	})
}

// TransformResult is what the transform stage did.
type TransformResult struct{ *transform.Result }

// Lines sum the transform up for the run's summary.
func (r TransformResult) Lines() []string {
	var rows int64
	for _, m := range r.Models {
		rows += max(m.Rows, 0)
	}
	verb := "committed"
	if !r.Committed {
		verb = "rolled back; every mart keeps what the last good run left"
	}
	lines := []string{fmt.Sprintf("%s, %s, %s (%s failed): %s",
		progress.Counted(int64(len(r.Models)), "model", "models"), progress.Counted(rows, "row", "rows"),
		progress.Counted(int64(r.Checked), "check or test", "checks and tests"), progress.Count(int64(len(r.Failures))), verb)}
	for _, h := range r.Hooks {
		lines = append(lines, fmt.Sprintf("hook %s: %s", h.Name, h.Summary))
	}
	return lines
}

func transformStage(ctx context.Context, e *Env, pool *pgxpool.Pool, run *ledger.Run) pipeline.Report {
	p, err := transform.LoadEmbedded()
	if err != nil {
		return pipeline.Report{Err: err}
	}
	cfg := e.Config
	res, err := transform.Run(ctx, pool, p, transform.Options{
		Run: run, StatementTimeout: cfg.Warehouse.StatementTimeout, LockTimeout: cfg.Warehouse.LockTimeout,
		Logger: e.Logger, Hooks: TransformHooks(cfg, e.Operator, run.ID),
	})
	rep := pipeline.Report{Err: err}
	if res != nil && res.Committed && err != nil {
		// The marts are the truth: they committed, only the bookkeeping
		// failed, so what depends on them goes ahead.
		rep.Status = ledger.Partial
	}
	if res != nil {
		r := TransformResult{res}
		rep.Value, rep.Lines = r, r.Lines()
	}
	return rep
}

// ExportResult is what the export stage did.
type ExportResult struct {
	// Sites are the sites exported; LeftOut those whose extract failed
	// tonight (their accounts and courses were not read).
	Sites, LeftOut []string
	// Summary is every feed's result.
	Summary *feeds.Summary
}

// Feeds lists "site/feed" of the feeds that ended with status (one of
// feeds.StatusPublished, StatusRefused, ...).
func (r *ExportResult) Feeds(status string) []string {
	var out []string
	if r.Summary != nil {
		for _, f := range r.Summary.Results {
			if f.Status == status {
				out = append(out, f.Instance+"/"+string(f.Feed))
			}
		}
	}
	return out
}

// Lines say what the export did, for the run's summary.
func (r *ExportResult) Lines() []string {
	var lines []string
	if len(r.LeftOut) > 0 {
		lines = append(lines, fmt.Sprintf("left out, their extract failed tonight: %s", strings.Join(r.LeftOut, ", ")))
	}
	if r.Summary != nil {
		lines = append(lines, r.Summary.Lines()...)
	}
	return lines
}

// exportStage exports every site whose extract did not fail; with
// enrolmentsOnly, only each site's enrolment feed (IMS or flat file).
func exportStage(ctx context.Context, e *Env, pool *pgxpool.Pool, run *ledger.Run, prior pipeline.Outcomes, enrolmentsOnly bool) pipeline.Report {
	res := &ExportResult{}
	for _, m := range e.Config.Moodle {
		if o, ran := prior["extract:moodle:"+m.Name]; ran && !o.OK() {
			res.LeftOut = append(res.LeftOut, m.Name)
			continue
		}
		res.Sites = append(res.Sites, m.Name)
	}
	if len(res.Sites) == 0 {
		// Instances empty would mean every site: there is nothing to do.
		return pipeline.Report{Status: ledger.Skipped, Value: res, Lines: append(res.Lines(), "no site to export")}
	}
	mailer, err := notify.New(wire.Notify(e.Config))
	if err != nil {
		return pipeline.Report{Err: err}
	}
	x := feeds.New(pool, wire.Feeds(e.Config), feeds.WithLogger(e.Logger), feeds.WithMailer(mailer), feeds.WithOperator(e.Operator))
	if enrolmentsOnly {
		res.Summary, err = exportEnrolments(ctx, x, run, e.Config, res.Sites)
	} else {
		res.Summary, err = x.Run(ctx, run, feeds.Options{Instances: res.Sites})
	}
	if err != nil {
		return pipeline.Report{Err: err, Value: res, Lines: res.Lines()}
	}
	rep := pipeline.Report{Err: res.Summary.Err(), Value: res, Lines: res.Lines()}
	var fe *feeds.Error
	if errors.As(rep.Err, &fe) && len(fe.Refused) == 0 && len(fe.Failed) < len(res.Summary.Results) {
		rep.Status = ledger.Partial
	}
	return rep
}

// exportEnrolments runs the enrolment feed each site takes (IMS, or the
// flat file), and nothing else, as one summary.
func exportEnrolments(ctx context.Context, x *feeds.Exporter, run *ledger.Run, cfg *config.Config, sites []string) (*feeds.Summary, error) {
	byFeed := map[feeds.Feed][]string{}
	for _, name := range sites {
		site, _ := cfg.Site(name)
		f := feeds.IMS
		if site.EnrolmentFeed == config.EnrolmentFlatfile {
			f = feeds.Flatfile
		}
		byFeed[f] = append(byFeed[f], name)
	}
	sum := &feeds.Summary{RunID: run.ID}
	for _, f := range []feeds.Feed{feeds.IMS, feeds.Flatfile} {
		if len(byFeed[f]) == 0 {
			continue
		}
		s, err := x.Run(ctx, run, feeds.Options{Instances: byFeed[f], Feeds: []feeds.Feed{f}})
		if s != nil {
			sum.Results = append(sum.Results, s.Results...)
		}
		if err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// GroupsResult is what one site's group sync did.
type GroupsResult struct {
	Site string
	// Report is the sync's plan, budget decisions and apply (nil when the
	// site has no group-sync course or the sync could not start).
	Report *groupsync.Report
}

// Lines say what the sync did, for the run's summary.
func (r *GroupsResult) Lines() []string {
	if r.Report == nil {
		return nil
	}
	var lines []string
	if r.Report.Result != nil {
		lines = append(lines, r.Report.Result.Lines()...)
	}
	return append(lines, r.Report.BudgetLines()...)
}

func groupsStage(ctx context.Context, e *Env, pool *pgxpool.Pool, run *ledger.Run, site *config.MoodleSite) pipeline.Report {
	counts, err := groupsync.TargetSites(ctx, pool)
	if err != nil {
		return pipeline.Report{Err: err}
	}
	if counts[site.Name] == 0 {
		return pipeline.Report{Value: &GroupsResult{Site: site.Name}, Lines: []string{"no group-sync course on this site"}}
	}
	c, err := e.MoodleClient(site, moodle.WithBatchSize(groupsync.BatchSize))
	if err != nil {
		return pipeline.Report{Err: err}
	}
	mailer, err := notify.New(wire.Notify(e.Config))
	if err != nil {
		return pipeline.Report{Err: err}
	}
	rep, err := groupsync.Sync(ctx, pool, c, envguard.New(e.Config.Environment, pool),
		groupsync.Options{Site: wire.GroupSite(site), Run: run, By: e.Operator, Logger: e.Logger, Mailer: mailer})
	res := &GroupsResult{Site: site.Name, Report: rep}
	out := pipeline.Report{Err: err, Value: res, Lines: res.Lines()}
	var pe *groupsync.PartialError
	if errors.As(err, &pe) {
		out.Status = ledger.Partial
	}
	return out
}

// CatalogResult is what the catalog stage published.
type CatalogResult struct {
	URL       string
	Published []catalog.Published
}

// Count is how many datasets were created or updated.
func (r *CatalogResult) Count(action string) int {
	n := 0
	for _, p := range r.Published {
		if p.Action == action {
			n++
		}
	}
	return n
}

// Lines say what the catalog stage did, for the run's summary.
func (r *CatalogResult) Lines() []string {
	return []string{fmt.Sprintf("%s created, %d updated in %s",
		progress.Counted(int64(r.Count("created")), "dataset", "datasets"), r.Count("updated"), r.URL)}
}

func catalogStage(ctx context.Context, e *Env, pool *pgxpool.Pool, run *ledger.Run) pipeline.Report {
	pub, err := e.PublishCatalog(ctx, pool, run)
	res := &CatalogResult{URL: e.Config.Catalog.URL, Published: pub}
	rep := pipeline.Report{Err: err, Value: res, Lines: res.Lines()}
	if err != nil && res.Count("created")+res.Count("updated") > 0 {
		rep.Status = ledger.Partial
	}
	return rep
}
