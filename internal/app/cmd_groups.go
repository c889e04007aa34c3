package app

import (
	"context"
	"flag"
	"strings"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/groups"
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
			} else if *apply || len(names) > 0 || *reason != "" {
				return Usagef("--apply, --group and --reason are for adopt")
			}
			g, err := groupsEnv(ctx, e)
			if err != nil {
				return err
			}
			o := groups.Options{Instance: *instance, Course: *course, Verbose: *verbose}
			if args[0] == "adopt" {
				return g.Adopt(ctx, o, names, *apply, *reason)
			}
			return g.PlanOrApply(ctx, args[0] == "apply", o)
		}
	},
}

// groupsEnv is what every groups action starts from: the configuration,
// the warehouse, the clients and the ledger's details.
func groupsEnv(ctx context.Context, e *Env) (*groups.Env, error) {
	cfg, err := e.Config()
	if err != nil {
		return nil, err
	}
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return nil, err
	}
	return &groups.Env{Config: cfg, Pool: pool, Logger: e.Logger, Out: e.Stdout, Warn: e.Stderr, By: Who(), Version: VersionString(), Args: e.Args,
		Client: func(site *config.MoodleSite, opts ...moodle.Option) (*moodle.Client, error) {
			return MoodleClient(e, site, opts...)
		},
		SaveRequests: func(runID int64) { saveRequests(ctx, e, pool, runID) }}, nil
}
