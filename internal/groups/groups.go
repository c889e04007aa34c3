// Package groups is `mim groups` over the configured sites: which sites a
// plan or an apply covers, each site's plan with what the guards would
// say, an apply over several sites as one run of the ledger, and the
// adoption of a teacher's groups in one course. export/groupsync does the
// work of each site; this package chooses the sites from the configuration
// and records the runs.
package groups

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/export/groupsync"
	"github.com/mimwarehouse/mim/internal/cli"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/envguard"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/notify"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/moodle"
)

// Env is what the groups actions work with.
type Env struct {
	Config *config.Config
	Pool   *pgxpool.Pool
	// Client builds a site's web-service client as every command does.
	Client      func(site *config.MoodleSite, opts ...moodle.Option) (*moodle.Client, error)
	Logger      *slog.Logger
	Out, Warn   io.Writer // reports; warnings
	By, Version string    // the operator and the binary, for the ledger
	Args        []string  // the command line, for the ledger
	// SaveRequests records the Moodle calls made so far under a run.
	SaveRequests func(runID int64)
}

// Options select what an action covers.
type Options struct {
	Instance string // one site ("": every site the target lists)
	Course   int64  // one Moodle course (0: every group-sync course)
	Verbose  bool   // every write and every waiting member
}

// Sites are the sites to sync: the one named, or every configured site the
// target lists (a site it lists that the configuration does not name is
// skipped with a warning).
func (e *Env) Sites(ctx context.Context, instance string) ([]*config.MoodleSite, error) {
	cfg := e.Config
	if instance != "" {
		site, ok := cfg.Site(instance)
		if !ok {
			var names []string
			for _, m := range cfg.Moodle {
				names = append(names, m.Name)
			}
			return nil, cli.Usagef("--instance %s: no such site in the configuration (sites: %s)", instance, strings.Join(names, ", "))
		}
		return []*config.MoodleSite{site}, nil
	}
	counts, err := groupsync.TargetSites(ctx, e.Pool)
	if err != nil {
		return nil, err
	}
	var out []*config.MoodleSite
	for i := range cfg.Moodle {
		if counts[cfg.Moodle[i].Name] > 0 {
			out = append(out, &cfg.Moodle[i])
		}
	}
	var unknown []string
	for name := range counts {
		if _, ok := cfg.Site(name); !ok {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	for _, name := range unknown {
		fmt.Fprintf(e.Warn, "warning: mart.exp_group_target lists site %s, which the configuration does not name; skipped\n", name)
	}
	return out, nil
}

func (e *Env) client(site *config.MoodleSite) (*moodle.Client, error) {
	return e.Client(site, moodle.WithBatchSize(groupsync.BatchSize))
}

// PlanOrApply shows each site's plan, or with apply syncs them all as one
// run of the ledger.
func (e *Env) PlanOrApply(ctx context.Context, apply bool, o Options) error {
	sites, err := e.Sites(ctx, o.Instance)
	if err != nil {
		return err
	}
	if o.Course != 0 && len(sites) > 1 {
		return cli.Usagef("--course %d: say which site with --instance (%d sites sync groups)", o.Course, len(sites))
	}
	if len(sites) == 0 {
		fmt.Fprintln(e.Out, "no configured site has group-sync courses in mart.exp_group_target; nothing to do")
		return nil
	}
	if apply {
		return e.apply(ctx, sites, o)
	}
	for i, site := range sites {
		if i > 0 {
			fmt.Fprintln(e.Out)
		}
		if err := e.plan(ctx, site, o); err != nil {
			return err
		}
	}
	return nil
}

// plan shows one site's plan; it writes nothing, anywhere.
func (e *Env) plan(ctx context.Context, site *config.MoodleSite, o Options) error {
	c, err := e.client(site)
	if err != nil {
		return err
	}
	// Asked but not recorded: a plan decides nothing.
	_, _, guardErr := envguard.New(e.Config.Environment, e.Pool).WebServices(ctx, wire.GuardSite(site), c)
	p, err := groupsync.BuildPlan(ctx, e.Pool, c, groupsync.Options{Site: wire.GroupSite(site), CourseID: o.Course, Logger: e.Logger})
	if err != nil {
		return err
	}
	return groupsync.WritePreview(ctx, e.Pool, e.Out, p, guardErr, o.Verbose)
}

// apply syncs every site as one run of the ledger.
func (e *Env) apply(ctx context.Context, sites []*config.MoodleSite, o Options) error {
	cfg := e.Config
	run, err := ledger.Begin(ctx, e.Pool, "groups", cfg.Environment, e.Version, e.Args)
	if err != nil {
		return err
	}
	defer run.Finish(ctx, ledger.Failed, cli.ExitFailure, errors.New("interrupted"))
	mailer, err := notify.New(wire.Notify(cfg))
	if err != nil {
		return err
	}
	var syncs []groupsync.SiteSync
	for _, site := range sites {
		c, err := e.client(site)
		syncs = append(syncs, groupsync.SiteSync{Client: c, ClientErr: err, Options: groupsync.Options{Site: wire.GroupSite(site),
			CourseID: o.Course, Run: run, By: e.By, Logger: e.Logger, Mailer: mailer}})
	}
	status, failed, err := groupsync.SyncSites(ctx, e.Pool, envguard.New(cfg.Environment, e.Pool), syncs, e.Out, cfg.Environment, o.Verbose)
	e.SaveRequests(run.ID)
	if ferr := run.Finish(ctx, status, cli.ExitCode(err), err); ferr != nil && err == nil {
		return ferr
	}
	if failed > 1 {
		return fmt.Errorf("%d of %d sites did not sync completely:\n%w", failed, len(sites), err)
	}
	return err
}

// Adopt shows, and with apply makes (recorded with reason), the adoptions
// of one course: the groups and groupings MIM does not own (only those
// called one of names, when given) that hold the name of one it wants.
func (e *Env) Adopt(ctx context.Context, o Options, names []string, apply bool, reason string) error {
	sites, err := e.Sites(ctx, o.Instance)
	if err != nil {
		return err
	}
	site := sites[0]
	c, err := e.client(site)
	if err != nil {
		return err
	}
	so := groupsync.Options{Site: wire.GroupSite(site), CourseID: o.Course, By: e.By, Logger: e.Logger}
	ap, err := groupsync.PlanAdoption(ctx, e.Pool, c, so, names)
	if err != nil {
		return err
	}
	if ap.WriteText(e.Out); len(ap.Adoptions) == 0 {
		return nil
	}
	if !apply {
		fmt.Fprintln(e.Out, "nothing written; adopt with --apply --reason \"...\"")
		return nil
	}
	run, err := ledger.Begin(ctx, e.Pool, "groups", e.Config.Environment, e.Version, e.Args)
	if err != nil {
		return err
	}
	so.Run = run
	err = groupsync.Adopt(ctx, e.Pool, c, envguard.New(e.Config.Environment, e.Pool), so, ap, reason)
	_ = run.Finish(ctx, ledger.Outcome(err), cli.ExitCode(err), err)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Out, "adopted %d; recorded in ctl.group_adoption (run %d)\n", len(ap.Adoptable()), run.ID)
	return nil
}
