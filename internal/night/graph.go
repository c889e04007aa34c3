package night

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pipeline"
)

// Stages of a run, in order.
const (
	StageExtract   = "extract"
	StageTransform = "transform"
	StageExport    = "export"
	StageGroups    = "groups"
	StageCatalog   = "catalog"
)

// AllStages are the stages a nightly run has unless told otherwise.
var AllStages = []string{StageExtract, StageTransform, StageExport, StageGroups, StageCatalog}

// The cycles a run can be.
const (
	// Nightly is the whole night: every source, the transform, every feed,
	// group sync and the catalog; its summary is always mailed.
	Nightly = "nightly"
	// Intraday is the day's short cycle: the SIS sources only (no Moodle
	// site is read: the warehouse keeps the last good Moodle state), the
	// transform and the enrolment delta (IMS or flat file); no group sync,
	// no other feed, and mail only when a guard refused or the run failed.
	Intraday = "intraday"
)

// cycle is what a run of one cycle does.
type cycle struct {
	// command is the run's command in the ledger, which tells the cycles
	// apart in mim status and /metrics.
	command string
	job     string
	stages  []string
	// moodle says whether the Moodle sites are extracted.
	moodle bool
	// enrolmentsOnly limits the export to the enrolment feed of each site.
	enrolmentsOnly bool
	// mailAlways mails the summary whatever happened (else only a run
	// that exits non-zero is mailed).
	mailAlways bool
}

var cycles = map[string]cycle{
	Nightly:  {command: "run", job: "mim run", stages: AllStages, moodle: true, mailAlways: true},
	Intraday: {command: "intraday", job: "mim run --cycle intraday", stages: []string{StageExtract, StageTransform, StageExport}, enrolmentsOnly: true},
}

// graph collects the run's tasks and what the later ones depend on.
type graph struct {
	e                         *Env
	pool                      *pgxpool.Pool
	o                         Options
	c                         cycle
	tasks                     []pipeline.Task
	sisExtracts, siteExtracts []string
}

func (g *graph) want(stage string) bool { return slices.Contains(g.o.Stages, stage) }

func (g *graph) add(t pipeline.Task) { g.tasks = append(g.tasks, t) }

// buildTasks builds the run's tasks from the stages o (resolved into cycle c)
// asks for. Sources are opened here, before the run starts, so a mistake
// is a usage error.
func buildTasks(ctx context.Context, e *Env, pool *pgxpool.Pool, o Options, c cycle) ([]pipeline.Task, error) {
	g := &graph{e: e, pool: pool, o: o, c: c}
	if g.want(StageExtract) {
		if err := g.extracts(ctx); err != nil {
			return nil, err
		}
	}
	if g.want(StageTransform) {
		g.add(pipeline.Task{Name: "transform", Stage: StageTransform, Needs: g.sisExtracts, After: g.siteExtracts,
			Runner: pipeline.RunnerFunc(func(ctx context.Context, run *ledger.Run, _ pipeline.Outcomes) pipeline.Report {
				return transformStage(ctx, e, g.pool, run)
			})})
	}
	if g.want(StageExport) {
		g.add(pipeline.Task{Name: "export", Stage: StageExport, Needs: []string{"transform"}, After: g.siteExtracts,
			Runner: pipeline.RunnerFunc(func(ctx context.Context, run *ledger.Run, prior pipeline.Outcomes) pipeline.Report {
				return exportStage(ctx, e, g.pool, run, prior, c.enrolmentsOnly)
			})})
	}
	if g.want(StageGroups) {
		g.groups()
	}
	if g.want(StageCatalog) && e.Config.Catalog.URL != "" && e.PublishCatalog != nil {
		g.add(pipeline.Task{Name: "catalog", Stage: StageCatalog, Needs: []string{"transform"},
			Runner: pipeline.RunnerFunc(func(ctx context.Context, run *ledger.Run, _ pipeline.Outcomes) pipeline.Report {
				return catalogStage(ctx, e, g.pool, run)
			})})
	}
	if len(g.tasks) == 0 {
		return nil, Usagef("nothing to run: the stages asked for (%s) have nothing configured", strings.Join(o.Stages, ", "))
	}
	return g.tasks, nil
}

// extracts adds one task per selected source: the SIS sources (which the
// transform needs) and the Moodle sites (which it only waits for).
func (g *graph) extracts(ctx context.Context) error {
	sel, err := g.selectSources()
	if err != nil {
		return err
	}
	for _, s := range sel {
		x, err := PrepareExtract(ctx, g.e, ExtractOptions{Sources: []string{s.Name}, Progress: g.o.Progress})
		if err != nil {
			return err
		}
		kind, inst := SourceKind(s.Name)
		name := "extract:" + s.Name
		if kind == "moodle" {
			g.siteExtracts = append(g.siteExtracts, name)
		} else {
			g.sisExtracts = append(g.sisExtracts, name)
		}
		g.add(pipeline.Task{Name: name, Stage: StageExtract, Source: kind, Instance: inst,
			Runner: pipeline.RunnerFunc(func(ctx context.Context, run *ledger.Run, _ pipeline.Outcomes) pipeline.Report {
				return extractStage(ctx, x, run)
			})})
	}
	return nil
}

// selectSources are the sources the cycle extracts: the ones asked for,
// else every configured one; the intraday cycle reads no Moodle site.
func (g *graph) selectSources() ([]SourceSelection, error) {
	sel, err := SelectSources(g.e.Config, g.o.Sources, nil)
	if err != nil || g.c.moodle {
		return sel, err
	}
	var out []SourceSelection
	for _, s := range sel {
		if kind, _ := SourceKind(s.Name); kind != "moodle" {
			out = append(out, s)
		} else if len(g.o.Sources) > 0 {
			return nil, Usagef("--source %s: the %s cycle reads no Moodle site (the last good Moodle state stands)", s.Name, g.o.Cycle)
		}
	}
	return out, nil
}

// groups adds one group-sync task per site: it needs the transform and
// that site's extract.
func (g *graph) groups() {
	for i := range g.e.Config.Moodle {
		site := &g.e.Config.Moodle[i]
		g.add(pipeline.Task{Name: "groups:" + site.Name, Stage: StageGroups, Source: "moodle", Instance: site.Name,
			Needs: []string{"transform", "extract:moodle:" + site.Name},
			Runner: pipeline.RunnerFunc(func(ctx context.Context, run *ledger.Run, _ pipeline.Outcomes) pipeline.Report {
				return groupsStage(ctx, g.e, g.pool, run, site)
			})})
	}
}

// extractStage runs one prepared source under the run.
func extractStage(ctx context.Context, x *Extraction, run *ledger.Run) pipeline.Report {
	out, err := x.Run(ctx, run)
	rep := pipeline.Report{Err: err, Value: out}
	switch {
	case err != nil:
		// An entity that did not land keeps yesterday's rows: the source
		// was not read tonight, whatever else landed. A suspect read (the
		// completeness guard), or a site that redirected elsewhere (the
		// environment guard), is refused.
		rep.Status = ledger.Outcome(err)
	case out != nil:
		// Partial: every entity landed, with bad rows or Moodle courses
		// that could not be read (kept as they were).
		rep.Status = out.Status()
		if rep.Status == ledger.Failed {
			rep.Err = errors.New("nothing landed")
		}
	}
	return rep
}
