package app

import (
	"context"
	"flag"

	"github.com/mimwarehouse/mim/internal/warehouse"
)

var migrateCommand = Command{
	Name:    "migrate",
	Group:   "Warehouse",
	Summary: "create or upgrade the warehouse schema, and label it with this deployment's environment",
	Usage:   "mim migrate [up|status] [--claim ENV]",
	Help:    helpText("migrate"),
	Setup: func(fs *flag.FlagSet) Runner {
		claim := fs.String("claim", "", "relabel the warehouse as belonging to `ENV` (must equal the configuration's environment)")
		return func(ctx context.Context, e *Env, args []string) error {
			action := "up"
			if len(args) > 1 {
				return Usagef("too many arguments: %v", args)
			}
			if len(args) == 1 {
				action = args[0]
			}
			if action != "up" && action != "status" {
				return Usagef("unknown action %q (use up or status)", action)
			}
			return runMigrate(ctx, e, action, *claim)
		}
	},
}

func runMigrate(ctx context.Context, e *Env, action, claim string) error {
	cfg, err := e.Config()
	if err != nil {
		return err
	}
	if claim != "" && claim != cfg.Environment {
		return Usagef("--claim %s does not match this deployment's environment %q; a warehouse can only be claimed for the deployment that uses it", claim, cfg.Environment)
	}
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return err
	}
	if action == "status" {
		st, err := warehouse.Status(ctx, pool)
		if err != nil {
			return err
		}
		_ = warehouse.WriteStatus(e.Stdout, st)
	} else if err := warehouse.MigrateAndLabel(ctx, pool, e.Stdout, e.Logger, cfg.Environment, claim, Who()); err != nil {
		return err
	}
	return warehouse.DescribeDeployment(ctx, pool, e.Stdout, cfg.Environment)
}
