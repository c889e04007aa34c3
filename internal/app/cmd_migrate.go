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
	Help: `up (the default) applies every pending migration; running it again is a no-op.
The first migrate labels the warehouse (ctl.deployment) with the configuration's
environment, bound to this warehouse's identity (the cluster's system
identifier and the database's OID). A warehouse that already carries another
label (a production backup restored into staging) keeps it, and a copy of a
warehouse (restored into another cluster or database, even under a copied
configuration that agrees with its label) is not the warehouse that was
labelled: either way every write to Moodle is refused until someone claims it
deliberately with --claim. (A major PostgreSQL upgrade that makes a new
cluster asks for the same claim.)

status lists the migrations and whether each is applied.

--claim ENV relabels the warehouse for this deployment and binds the label to
this warehouse; ENV must equal the configuration's environment, so a claim is
always a conscious act.`,
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
