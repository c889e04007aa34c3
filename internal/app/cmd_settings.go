package app

import (
	"context"
	"flag"

	"github.com/mimwarehouse/mim/internal/settings"
)

var settingsCommand = Command{
	Name:    "settings",
	Group:   "Warehouse",
	Summary: "list or change the operational settings (thresholds, overrides, academic year)",
	Usage:   "mim settings list | mim settings set KEY VALUE [--reason TEXT]",
	Help: `Settings live in the warehouse (ctl.settings), not in the configuration file,
so the integration team can change them between runs. Every change is kept in
ctl.settings_history with who made it, when and why.

Every removal MIM makes has a budget, and each budget a one-shot override:

  threshold_percent (75)            an IMS export (and the tutor table) must keep
                                    this share of what Moodle was told, in the
                                    courses that are not frozen
     threshold_override             lets one run's breach through
  course_drop_percent (50)          a course losing more of its students has its
                                    drops held back
     course_drop_override           sends one run's held drops
  group_delete_budget (50),         most MIM groups plus groupings, and most share
  group_delete_budget_percent (10)  of the MIM groups, one group sync may delete
     group_delete_override
  member_remove_budget (1000),      most members, and most share of the members of
  member_remove_budget_percent (10) the MIM groups (from 10 removals on), one group
                                    sync may remove
     member_remove_override
  group_member_drop_percent (50)    a MIM group losing more of its members (2 or
                                    more) has its removals held back
     group_member_drop_override
  completeness_override             accepts one run's suspect extracts (an entity
                                    that came back empty, or shrank past its
                                    max_shrink_percent)

Overrides are deliberate (the incumbent's policy: off unless a run with one
has been agreed by the Service Operations Manager and the Service Owner):
arming one needs --reason, which is kept with who armed it; it lapses after
the run that used it (every guard of that run may use it) or after
override_hours (24), whichever comes first. mim status and the status page
show who armed each override, why, and when it lapses.

  mim settings set member_remove_override true --reason "CMIS rebuilt the term 2 groups; agreed with the service owner"
`,
	Setup: func(fs *flag.FlagSet) Runner {
		reason := fs.String("reason", "", "why the value changes (kept in the history)")
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) == 0 {
				return Usagef("say list or set")
			}
			switch args[0] {
			case "list":
				if len(args) != 1 {
					return Usagef("list takes no arguments")
				}
				return settingsList(ctx, e)
			case "set":
				if len(args) != 3 {
					return Usagef("set needs KEY and VALUE")
				}
				pool, err := e.Warehouse(ctx)
				if err != nil {
					return err
				}
				return settings.SetAndReport(ctx, pool, e.Stdout, args[1], args[2], Who(), *reason)
			}
			return Usagef("unknown action %q (use list or set)", args[0])
		}
	},
}

func settingsList(ctx context.Context, e *Env) error {
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return err
	}
	all, err := settings.List(ctx, pool)
	if err != nil {
		return err
	}
	return settings.WriteTable(e.Stdout, all)
}
