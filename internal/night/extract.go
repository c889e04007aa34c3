package night

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mimwarehouse/mim/extract"
	moodlex "github.com/mimwarehouse/mim/extract/moodle"
	"github.com/mimwarehouse/mim/internal/cli"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/envguard"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/progress"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/load"
)

// ExtractOptions choose what an extract stage reads and how it shows progress.
type ExtractOptions struct {
	// Sources are source names (sits, cmis, moodle:NAME, or moodle for every
	// site); empty means every configured source.
	Sources []string
	// Entities are ENTITY (every selected source) or SOURCE/ENTITY names;
	// empty means what the configuration enables.
	Entities []string
	// Progress is auto (bars on a terminal, else log lines), bars, log or off.
	Progress string
	// ProgressEvery is the log-line interval (default 30 seconds).
	ProgressEvery time.Duration
}

// Extraction is an extract stage ready to run: its sources are chosen and
// opened (nothing is read or dialled yet). `mim run` prepares one and runs
// it under its own ledger run.
type Extraction struct {
	e       *Env
	opts    ExtractOptions
	display *progress.Display
	sources []*plannedSource
	shrink  func(extract.EntityID) int
}

type plannedSource struct {
	name     string
	entities []string
	src      extract.Source
	openErr  error
}

// PrepareExtract chooses and opens the sources. A mistake on the command
// line (an unknown source or entity) is a *UsageError returned before
// anything is recorded; a source that cannot be opened for another reason
// fails alone when the extraction runs.
func PrepareExtract(ctx context.Context, e *Env, opts ExtractOptions) (*Extraction, error) {
	cfg := e.Config
	sel, err := SelectSources(cfg, opts.Sources, opts.Entities)
	if err != nil {
		return nil, err
	}
	x := &Extraction{e: e, opts: opts}
	if x.display, err = newDisplay(e, opts); err != nil {
		return nil, err
	}
	for _, s := range sel {
		p := &plannedSource{name: s.Name, entities: s.Entities}
		p.src, p.openErr = OpenSource(ctx, e, s.Name, extract.Options{Entities: s.Entities, Progress: x.display.Source(s.Name)})
		var ue *UsageError
		if errors.As(p.openErr, &ue) {
			return nil, Usagef("%s: %s", s.Name, ue.Msg)
		}
		// Opening dials nothing, so with entities asked for, a refusal is
		// almost surely about them ("sits has no entity ..."): a usage error.
		if p.openErr != nil && len(s.Entities) > 0 {
			return nil, Usagef("%s: %v", s.Name, p.openErr)
		}
		if err := checkShrinkLimits(cfg, s.Name, p.src); err != nil {
			return nil, err
		}
		x.sources = append(x.sources, p)
	}
	x.shrink = shrinkLimits(cfg)
	return x, nil
}

// sourceShrinkLimits is the max_shrink_percent section of a source.
func sourceShrinkLimits(cfg *config.Config, kind, instance string) (config.ShrinkLimits, string) {
	switch kind {
	case "sits":
		if cfg.Sources.SITS != nil {
			return cfg.Sources.SITS.MaxShrinkPercent, "sources.sits.max_shrink_percent"
		}
	case "cmis":
		if cfg.Sources.CMIS != nil {
			return cfg.Sources.CMIS.MaxShrinkPercent, "sources.cmis.max_shrink_percent"
		}
	case "moodle":
		for i := range cfg.Moodle {
			if cfg.Moodle[i].Name == instance {
				return cfg.Moodle[i].MaxShrinkPercent, fmt.Sprintf("moodle[%d].max_shrink_percent", i)
			}
		}
	}
	return nil, ""
}

// shrinkLimits is the loader's judgement of completeness as configured:
// each source's max_shrink_percent, else the built-in default.
func shrinkLimits(cfg *config.Config) func(extract.EntityID) int {
	return func(id extract.EntityID) int {
		limits, _ := sourceShrinkLimits(cfg, id.Source, id.Instance)
		if v, ok := limits[id.Entity]; ok {
			return v
		}
		return load.DefaultShrinkLimit(id)
	}
}

// checkShrinkLimits refuses a max_shrink_percent that names an entity the
// source does not have: a typo must not leave an entity with the default.
func checkShrinkLimits(cfg *config.Config, name string, src extract.Source) error {
	kind, inst := SourceKind(name)
	limits, path := sourceShrinkLimits(cfg, kind, inst)
	lister, ok := src.(interface{ Entities() []string })
	if len(limits) == 0 || !ok {
		return nil
	}
	known := lister.Entities()
	if kind == "moodle" {
		known = moodlex.RawEntities()
	}
	for entity := range limits {
		if !slices.Contains(known, entity) {
			return &config.Error{Problems: []config.Problem{{Path: path + "." + entity,
				Message: fmt.Sprintf("%s has no entity %q (it has %s)", name, entity, strings.Join(known, ", "))}}}
		}
	}
	return nil
}

func newDisplay(e *Env, opts ExtractOptions) (*progress.Display, error) {
	logger := e.Logger
	if logger == nil {
		logger = slog.Default()
	}
	every := opts.ProgressEvery
	if every <= 0 {
		every = 30 * time.Second
	}
	switch opts.Progress {
	case "", "auto":
		if progress.IsTerminal(e.Stderr) {
			return progress.NewTerminal(e.Stderr), nil
		}
		return progress.NewLog(logger, every), nil
	case "bars":
		return progress.NewTerminal(e.Stderr), nil
	case "log":
		return progress.NewLog(logger, every), nil
	case "off":
		return nil, nil
	}
	return nil, Usagef("--progress %q is not one of auto, bars, log, off", opts.Progress)
}

// SourceSelection is one source to extract and the entities asked of it
// (empty: what the configuration enables).
type SourceSelection struct {
	Name     string
	Entities []string
}

// SelectSources resolves --source and --entity against the configuration.
func SelectSources(cfg *config.Config, sources, entities []string) ([]SourceSelection, error) {
	configured := ConfiguredSources(cfg)
	if len(configured) == 0 {
		return nil, Usagef("the configuration names no source (sources.sits, sources.cmis or moodle sites)")
	}
	// expand turns a name or a kind ("moodle") into configured source names.
	expand := func(name, what string) ([]string, error) {
		var out []string
		for _, c := range configured {
			if kind, _ := SourceKind(c); c == name || (kind == name && strings.HasPrefix(c, kind+":")) {
				out = append(out, c)
			}
		}
		if len(out) == 0 {
			return nil, Usagef("%s %q is not a configured source (configured: %s)", what, name, strings.Join(configured, ", "))
		}
		return out, nil
	}
	var plain []string
	qualified := map[string][]string{} // configured source name -> entities
	for _, ent := range entities {
		src, name, ok := strings.Cut(ent, "/")
		if !ok {
			plain = append(plain, ent)
			continue
		}
		if name == "" {
			return nil, Usagef("--entity %q names no entity after the '/'", ent)
		}
		names, err := expand(src, "--entity "+ent+": source")
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			qualified[n] = appendNew(qualified[n], name)
		}
	}
	var selected []string
	switch {
	case len(sources) > 0:
		for _, s := range sources {
			names, err := expand(s, "--source")
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				selected = appendNew(selected, n)
			}
		}
	case len(qualified) > 0 && len(plain) == 0:
		for _, c := range configured {
			if qualified[c] != nil {
				selected = append(selected, c)
			}
		}
	default:
		selected = configured
	}
	for n := range qualified {
		if !slices.Contains(selected, n) {
			return nil, Usagef("--entity names source %s, which --source does not select", n)
		}
	}
	if len(plain) > 0 {
		kinds := map[string]bool{}
		for _, s := range selected {
			k, _ := SourceKind(s)
			kinds[k] = true
		}
		if len(kinds) > 1 {
			return nil, Usagef("--entity %s applies to every selected source, but they are of different kinds (%s): "+
				"add --source, or write SOURCE/ENTITY (e.g. %s/%s)", plain[0], strings.Join(selected, ", "), selected[0], plain[0])
		}
	}
	out := make([]SourceSelection, 0, len(selected))
	for _, s := range selected {
		ents := append(append([]string(nil), plain...), qualified[s]...)
		if kind, _ := SourceKind(s); kind == "moodle" {
			for _, en := range ents {
				if !slices.Contains(config.MoodleEntities, en) {
					return nil, Usagef("--entity %q is not a Moodle entity (Moodle entities: %s)", en, strings.Join(config.MoodleEntities, ", "))
				}
			}
		}
		out = append(out, SourceSelection{Name: s, Entities: dedupe(ents)})
	}
	return out, nil
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func dedupe(list []string) []string {
	var out []string
	for _, s := range list {
		out = appendNew(out, s)
	}
	return out
}

// SourceOutcome is what one source did.
type SourceOutcome struct {
	Name     string
	Err      error // the source's own error (failing to open, connect, or an entity)
	Elapsed  time.Duration
	Entities []load.Report // in the order they were opened
}

// ExtractOutcome is what an extract stage did.
type ExtractOutcome struct {
	RunID   int64
	Sources []SourceOutcome
}

// Failures counts failed sources and failed entities (an entity's failure
// usually fails its source too; each is counted once per place it shows).
func (o *ExtractOutcome) failures() (failed, landed, partial int) {
	for _, s := range o.Sources {
		if s.Err != nil {
			failed++
		}
		for _, r := range s.Entities {
			switch r.Status {
			case ledger.Failed, ledger.Refused:
				if s.Err == nil {
					failed++
				}
			case ledger.Partial:
				partial++
				landed++
			default:
				landed++
			}
		}
	}
	return failed, landed, partial
}

// Status is the ledger status of the stage: refused if an entity's read
// was suspect (nothing of it landed) or a source was refused (a site that
// redirected elsewhere), failed if nothing landed, partial if something
// failed or a scope or row was bad, else succeeded.
func (o *ExtractOutcome) Status() string {
	failed, landed, partial := o.failures()
	switch {
	case o.refused():
		return ledger.Refused
	case failed > 0 && landed == 0:
		return ledger.Failed
	case failed > 0 || partial > 0:
		return ledger.Partial
	}
	return ledger.Succeeded
}

// refused reports whether an entity's read was refused as suspect, or a
// source by the environment guard.
func (o *ExtractOutcome) refused() bool {
	for _, s := range o.Sources {
		if ledger.Outcome(s.Err) == ledger.Refused {
			return true
		}
		for _, r := range s.Entities {
			if r.Status == ledger.Refused {
				return true
			}
		}
	}
	return false
}

// ExtractError names every source that failed; it exits 3 when one of
// them was refused by the completeness guard.
type ExtractError struct {
	Msgs    []string
	Refused bool
}

func (e *ExtractError) Error() string {
	return fmt.Sprintf("extracting: %d failed (what succeeded was kept): %s", len(e.Msgs), strings.Join(e.Msgs, "; "))
}

// ExitCode is 3 when a guard refused an entity, else 1.
func (e *ExtractError) ExitCode() int {
	if e.Refused {
		return exitRefused
	}
	return exitFailure
}

// Err names every source that failed, or is nil.
func (o *ExtractOutcome) Err() error {
	var msgs []string
	for _, s := range o.Sources {
		switch {
		case s.Err != nil:
			msgs = append(msgs, s.Name+": "+s.Err.Error())
		default:
			for _, r := range s.Entities {
				if r.Status == ledger.Failed || r.Status == ledger.Refused {
					msgs = append(msgs, r.ID.String()+": "+errText(r.Err))
				}
			}
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return &ExtractError{Msgs: msgs, Refused: o.refused()}
}

func errText(err error) string {
	if err == nil {
		return "failed"
	}
	return err.Error()
}

// Run extracts every prepared source at once into raw under run and
// returns what happened; the error is the outcome's Err.
func (x *Extraction) Run(ctx context.Context, run *ledger.Run) (*ExtractOutcome, error) {
	pool, err := x.e.Warehouse(ctx)
	if err != nil {
		return nil, err
	}
	names := map[[2]string]string{} // (source, instance) of an EntityID -> source name
	for _, p := range x.sources {
		kind, inst := SourceKind(p.name)
		names[[2]string{kind, inst}] = p.name
	}
	nameOf := func(id extract.EntityID) string {
		if n, ok := names[[2]string{id.Source, id.Instance}]; ok {
			return n
		}
		return id.Source + ":" + id.Instance
	}
	opts := []load.Option{load.WithLogger(x.e.logger()), load.WithOnFinish(func(r load.Report) {
		x.display.Finish(nameOf(r.ID), r.ID.Entity, finishText(r))
	}), load.WithShrinkLimits(x.shrink), load.WithOperator(x.e.Operator)}
	loader := load.New(pool, run, opts...)
	x.display.Start()
	out := &ExtractOutcome{RunID: run.ID, Sources: make([]SourceOutcome, len(x.sources))}
	var wg sync.WaitGroup
	for i, p := range x.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out.Sources[i] = x.runSource(ctx, run, loader, p)
		}()
	}
	wg.Wait()
	x.display.Stop()
	// Attach each source's entity reports, in the order they were opened.
	reports := loader.Reports()
	sort.SliceStable(reports, func(i, j int) bool { return reports[i].Started.Before(reports[j].Started) })
	for i := range out.Sources {
		for _, r := range reports {
			if nameOf(r.ID) == out.Sources[i].Name {
				out.Sources[i].Entities = append(out.Sources[i].Entities, r)
			}
		}
	}
	return out, out.Err()
}

func (x *Extraction) runSource(ctx context.Context, run *ledger.Run, loader *load.Loader, p *plannedSource) SourceOutcome {
	kind, inst := SourceKind(p.name)
	o := SourceOutcome{Name: p.name}
	start := time.Now()
	step, err := run.Step(ctx, ledger.StepKey{Stage: load.Stage, Source: kind, Instance: inst})
	if err != nil {
		o.Err = err
		return o
	}
	err = p.openErr
	if err == nil {
		err = p.src.Extract(ctx, loader)
	}
	// A source that returned with an entity still open has a bug; its
	// entity is aborted so nothing half-written lands and the step ends.
	mine := func(id extract.EntityID) bool { return id.Source == kind && id.Instance == inst }
	if ids := loader.AbortUnfinished(mine); len(ids) > 0 && err == nil {
		err = fmt.Errorf("the source returned without finishing %d entit(ies), e.g. %s", len(ids), ids[0].Entity)
	}
	if re := x.redirected(ctx, run, kind, inst, err); re != nil {
		err = re
	}
	o.Err, o.Elapsed = err, time.Since(start)
	status := ledger.Outcome(err)
	detail := map[string]any{}
	if len(p.entities) > 0 {
		detail["entities"] = p.entities
	}
	if ferr := step.Finish(ctx, status, ledger.Counts{}, detail, err); ferr != nil && o.Err == nil {
		o.Err = ferr
	}
	return o
}

// redirected makes a Moodle site that redirected its extraction to another
// site root the environment guard's refusal (recorded as a guard event):
// the configured URL is not the live site's.
func (x *Extraction) redirected(ctx context.Context, run *ledger.Run, kind, inst string, err error) error {
	if kind != "moodle" || err == nil {
		return nil
	}
	cfg := x.e.Config
	site, ok := cfg.Site(inst)
	if !ok {
		return nil
	}
	pool, perr := x.e.Warehouse(ctx)
	if perr != nil {
		return nil
	}
	re := envguard.New(cfg.Environment, pool).Redirected(wire.GuardSite(site), err)
	if re == nil {
		return nil
	}
	if rerr := envguard.Record(ctx, pool, run.ID, re); rerr != nil {
		return errors.Join(re, rerr)
	}
	return re
}

func finishText(r load.Report) string {
	res := r.Result
	switch r.Status {
	case ledger.Failed:
		return fmt.Sprintf("FAILED after %s read", progress.Count(res.In))
	case ledger.Refused:
		return fmt.Sprintf("SUSPECT after %s read: nothing loaded", progress.Count(res.In))
	case ledger.Partial:
		return fmt.Sprintf("%s read, %s new, %s changed, %s deleted; %s error(s)", progress.Count(res.In), progress.Count(res.New),
			progress.Count(res.Changed), progress.Count(res.Deleted), progress.Count(r.Errors))
	}
	return fmt.Sprintf("%s read, %s new, %s changed, %s deleted", progress.Count(res.In), progress.Count(res.New),
		progress.Count(res.Changed), progress.Count(res.Deleted))
}

// ExtractRun is what `mim extract` did under its own ledger run.
type ExtractRun struct {
	RunID   int64
	Started time.Time
	// Status is the run's ledger status.
	Status  string
	Outcome *ExtractOutcome
}

// Extract is `mim extract`: it chooses and opens the sources, takes the
// run lock under a ledger run of its own, lands every source at once, and
// records how it ended. show, when the extraction ran, sees its outcome
// before the run is finished (the command prints it); the error is the
// outcome's Err, or why the extraction could not start.
func Extract(ctx context.Context, e *Env, opts ExtractOptions, show func(runID int64, out *ExtractOutcome) error) (*ExtractRun, error) {
	x, err := PrepareExtract(ctx, e, opts)
	if err != nil {
		return nil, err
	}
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkSchema(ctx, pool); err != nil {
		return nil, err
	}
	run, err := ledger.Begin(ctx, pool, "extract", e.Config.Environment, e.Version, e.Args)
	if err != nil {
		return nil, fmt.Errorf("starting the extract: %w", err)
	}
	defer run.Finish(ctx, ledger.Failed, exitFailure, errors.New("interrupted"))
	out, runErr := x.Run(ctx, run)
	e.saveRequests(ctx, pool, run.ID)
	if out != nil && show != nil {
		if err := show(run.ID, out); err != nil {
			return nil, err
		}
	}
	res := &ExtractRun{RunID: run.ID, Started: run.Started, Status: ledger.Failed, Outcome: out}
	if out != nil {
		res.Status = out.Status()
	}
	if err := run.Finish(ctx, res.Status, cli.ExitCode(runErr), runErr); err != nil && runErr == nil {
		return res, err
	}
	return res, runErr
}
