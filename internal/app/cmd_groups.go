package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/export/groupsync"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/envguard"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/notify"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/moodle"
)

var groupsCommand = Command{
	Name:    "groups",
	Group:   "Feeds and Moodle",
	Summary: "put CMIS timetable groups into Moodle: plan shows what would change, apply writes it (guarded)",
	Usage:   "mim groups plan|apply [--instance NAME] [--course ID] [--verbose]\n       mim groups adopt --instance NAME --course ID [--group NAME]... [--apply --reason TEXT]",
	Help: `plan reads the desired groups (mart.exp_group_target: the CMIS groups of the
courses whose mapping has group_sync) and what each Moodle site has NOW, read
through its web services in this run, never from remembered state. It prints
per course the groups and groupings to create, the assignments, the members to
add and remove, the MIM groups and groupings to delete, the members waiting for
their enrolment and the conflicts, and says whether apply would be refused and
why. It writes nothing, anywhere.

apply builds the same plan and sends it:
  - Environment guard, before any write: the site's configured environment
    must equal this deployment's, the warehouse (ctl.deployment) must say the
    same, and the siteurl the site reports must equal its configured URL.
    Otherwise nothing is written there, the refusal names the check that
    failed (exit 3). A production warehouse restored into staging is
    relabelled deliberately with 'mim migrate --claim staging'.
  - MIM touches only groups and groupings whose idnumber starts with the
    site's group_prefix (default "mim:"), and only in group-sync courses. A
    group MIM does not own with the name of a desired one is a conflict:
    reported, never touched.
  - Budgets: a plan deleting more than group_delete_budget groups plus
    groupings, or a larger share of the MIM groups read than
    group_delete_budget_percent, is refused (exit 3) unless
    group_delete_override is armed; so is one removing more members than
    member_remove_budget, or (from 10 removals on) a larger share of the
    members of MIM's groups than member_remove_budget_percent, unless
    member_remove_override is armed. A MIM group that would lose 2 or more
    members and more than group_member_drop_percent of them has its removals
    held (the rest goes ahead) unless group_member_drop_override is armed.
    An override lapses after the run that used it (mim help settings).
  - Writes go in batches of 25 that are split on failure until the bad item
    stands alone, so one bad item fails alone and the others are applied.
    Every answer is decoded and checked (Moodle reports errors with HTTP
    200); an id of 0 is a failure. Members not enrolled yet are reported as
    waiting, not retried; a later sync adds them once they are enrolled.
Everything sent is recorded in ctl.group_sync_action with Moodle's answer,
and the run in the ledger (stage "groups"). A second apply right after the
first changes nothing.

Without --instance, every configured site that has group-sync courses is
synced. --course takes a Moodle course id (with --instance when several sites
sync groups).

adopt takes over, in one course, a group (and grouping) MIM does not own that
holds the name of a CMIS group MIM wants there (a teacher made "Seminar 1"
before the sync did; plan reports it as a conflict). Without --apply it shows
what would be adopted and what the next apply then does in the course: the
members it would add and remove (removals count against the budgets like any:
a teacher's group whose members mostly go is held by group_member_drop_percent
until group_member_drop_override is armed for the sync that replaces them).
With --apply --reason "..." it gives each object MIM's idnumber through
core_group_update_groups / core_group_update_groupings (environment guard
first), re-reads the course to see Moodle has it, and records each adoption
in ctl.group_adoption with who and why. --group limits it to groups of those
names. An object with an idnumber of its own is not adopted (another
integration may own it).

Exit status: 0 done (waiting members and conflicts are not failures), 1 some
writes failed (the others were applied; the next sync retries from a fresh
read), 3 refused by a guard (nothing was written to that site).`,
	Setup: func(fs *flag.FlagSet) Runner {
		instance := fs.String("instance", "", "only the Moodle site `NAME`")
		course := fs.Int64("course", 0, "only the Moodle course with id `ID`")
		verbose := fs.Bool("verbose", false, "list every write and every waiting member")
		apply := fs.Bool("apply", false, "adopt: make the adoptions (without it, only show them)")
		reason := fs.String("reason", "", "adopt --apply: why, recorded with each adoption")
		var names []string
		fs.Func("group", "adopt: only the group (and grouping) called `NAME` (repeatable)", listFlag(&names))
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) != 1 || (args[0] != "plan" && args[0] != "apply" && args[0] != "adopt") {
				return Usagef("say plan, apply or adopt")
			}
			if *course < 0 {
				return Usagef("--course takes a Moodle course id")
			}
			if args[0] == "adopt" {
				if *instance == "" || *course == 0 {
					return Usagef("adopt works on one course: give --instance and --course")
				}
				if *apply && strings.TrimSpace(*reason) == "" {
					return Usagef("adopt --apply needs --reason: the adoption is recorded with it")
				}
				return runAdopt(ctx, e, *instance, *course, names, *apply, *reason)
			}
			if *apply || len(names) > 0 || *reason != "" {
				return Usagef("--apply, --group and --reason are for adopt")
			}
			return runGroups(ctx, e, args[0] == "apply", *instance, *course, *verbose)
		}
	},
}

// groupsEnv is what every groups action starts from: the configuration,
// the warehouse and the sites it works on.
func groupsEnv(ctx context.Context, e *Env, instance string) (*config.Config, *pgxpool.Pool, []*config.MoodleSite, error) {
	cfg, err := e.Config()
	if err != nil {
		return nil, nil, nil, err
	}
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	sites, err := groupSites(ctx, e, cfg, pool, instance)
	return cfg, pool, sites, err
}

func runGroups(ctx context.Context, e *Env, apply bool, instance string, course int64, verbose bool) error {
	cfg, pool, sites, err := groupsEnv(ctx, e, instance)
	if err != nil {
		return err
	}
	if course != 0 && len(sites) > 1 {
		return Usagef("--course %d: say which site with --instance (%d sites sync groups)", course, len(sites))
	}
	if len(sites) == 0 {
		fmt.Fprintln(e.Stdout, "no configured site has group-sync courses in mart.exp_group_target; nothing to do")
		return nil
	}
	if !apply {
		for i, site := range sites {
			if i > 0 {
				fmt.Fprintln(e.Stdout)
			}
			if err := groupsPlan(ctx, e, cfg, pool, site, course, verbose); err != nil {
				return err
			}
		}
		return nil
	}
	return groupsApply(ctx, e, cfg, pool, sites, course, verbose)
}

// groupSites are the sites to sync: the one named, or every configured site
// the target lists.
func groupSites(ctx context.Context, e *Env, cfg *config.Config, pool *pgxpool.Pool, instance string) ([]*config.MoodleSite, error) {
	if instance != "" {
		site, ok := cfg.Site(instance)
		if !ok {
			var names []string
			for _, m := range cfg.Moodle {
				names = append(names, m.Name)
			}
			return nil, Usagef("--instance %s: no such site in the configuration (sites: %s)", instance, strings.Join(names, ", "))
		}
		return []*config.MoodleSite{site}, nil
	}
	counts, err := groupsync.TargetSites(ctx, pool)
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
		fmt.Fprintf(e.Stderr, "warning: mart.exp_group_target lists site %s, which the configuration does not name; skipped\n", name)
	}
	return out, nil
}

func groupsClient(e *Env, site *config.MoodleSite) (*moodle.Client, error) {
	return MoodleClient(e, site, moodle.WithBatchSize(groupsync.BatchSize))
}

func groupsPlan(ctx context.Context, e *Env, cfg *config.Config, pool *pgxpool.Pool, site *config.MoodleSite, course int64, verbose bool) error {
	c, err := groupsClient(e, site)
	if err != nil {
		return err
	}
	// Asked but not recorded: a plan decides nothing.
	_, _, guardErr := envguard.New(cfg.Environment, pool).WebServices(ctx, wire.GuardSite(site), c)
	p, err := groupsync.BuildPlan(ctx, pool, c, groupsync.Options{Site: wire.GroupSite(site), CourseID: course, Logger: e.Logger})
	if err != nil {
		return err
	}
	return groupsync.WritePreview(ctx, pool, e.Stdout, p, guardErr, verbose)
}

func groupsApply(ctx context.Context, e *Env, cfg *config.Config, pool *pgxpool.Pool, sites []*config.MoodleSite, course int64, verbose bool) error {
	run, err := ledger.Begin(ctx, pool, "groups", cfg.Environment, VersionString(), e.Args)
	if err != nil {
		return err
	}
	defer run.Finish(ctx, ledger.Failed, ExitFailure, errors.New("interrupted"))
	mailer, err := notify.New(wire.Notify(cfg))
	if err != nil {
		return err
	}
	var syncs []groupsync.SiteSync
	for _, site := range sites {
		c, err := groupsClient(e, site)
		syncs = append(syncs, groupsync.SiteSync{Client: c, ClientErr: err, Options: groupsync.Options{Site: wire.GroupSite(site),
			CourseID: course, Run: run, By: Who(), Logger: e.Logger, Mailer: mailer}})
	}
	status, failed, err := groupsync.SyncSites(ctx, pool, envguard.New(cfg.Environment, pool), syncs, e.Stdout, cfg.Environment, verbose)
	saveRequests(ctx, e, pool, run.ID)
	if ferr := run.Finish(ctx, status, ExitCode(err), err); ferr != nil && err == nil {
		return ferr
	}
	if failed > 1 {
		return fmt.Errorf("%d of %d sites did not sync completely:\n%w", failed, len(sites), err)
	}
	return err
}

// runAdopt shows, and with apply makes, the adoptions of one course.
func runAdopt(ctx context.Context, e *Env, instance string, course int64, names []string, apply bool, reason string) error {
	cfg, pool, sites, err := groupsEnv(ctx, e, instance)
	if err != nil {
		return err
	}
	site := sites[0]
	c, err := groupsClient(e, site)
	if err != nil {
		return err
	}
	o := groupsync.Options{Site: wire.GroupSite(site), CourseID: course, By: Who(), Logger: e.Logger}
	ap, err := groupsync.PlanAdoption(ctx, pool, c, o, names)
	if err != nil {
		return err
	}
	w := e.Stdout
	if ap.WriteText(w); len(ap.Adoptions) == 0 {
		return nil
	}
	if !apply {
		fmt.Fprintln(w, "nothing written; adopt with --apply --reason \"...\"")
		return nil
	}
	run, err := ledger.Begin(ctx, pool, "groups", cfg.Environment, VersionString(), e.Args)
	if err != nil {
		return err
	}
	o.Run = run
	err = groupsync.Adopt(ctx, pool, c, envguard.New(cfg.Environment, pool), o, ap, reason)
	_ = run.Finish(ctx, ledger.Outcome(err), ExitCode(err), err)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "adopted %d; recorded in ctl.group_adoption (run %d)\n", len(ap.Adoptable()), run.ID)
	return nil
}
