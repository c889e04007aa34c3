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
	Help:    helpText("groups"),
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
