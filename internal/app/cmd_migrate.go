package app

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"

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
		tw := tabwriter.NewWriter(e.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tMIGRATION\tAPPLIED")
		for _, m := range st {
			when := "pending"
			if m.Applied {
				when = m.AppliedAt.Local().Format("2006-01-02 15:04:05")
			}
			fmt.Fprintf(tw, "%05d\t%s\t%s\n", m.Version, m.Name, when)
		}
		tw.Flush()
		return describeDeployment(ctx, e, cfg.Environment)
	}

	applied, err := warehouse.Migrate(ctx, pool, e.Logger)
	for _, m := range applied {
		fmt.Fprintf(e.Stdout, "applied %05d %s\n", m.Version, m.Name)
	}
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(e.Stdout, "schema up to date; nothing to apply")
	}
	if claim != "" {
		prev, err := warehouse.Claim(ctx, pool, claim, Who())
		if err != nil {
			return err
		}
		if prev != claim {
			fmt.Fprintf(e.Stdout, "warehouse claimed for environment %q (it was %q)\n", claim, prev)
		}
	} else {
		d, created, err := warehouse.EnsureDeployment(ctx, pool, cfg.Environment, Who())
		if err != nil {
			return err
		}
		if created {
			fmt.Fprintf(e.Stdout, "warehouse labelled as environment %q\n", d.Environment)
		}
	}
	return describeDeployment(ctx, e, cfg.Environment)
}

// describeDeployment prints the warehouse's label and warns when it is not
// this deployment's, without failing: migrating a restored copy is fine,
// writing from it to Moodle is what the guards refuse.
func describeDeployment(ctx context.Context, e *Env, env string) error {
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return err
	}
	d, err := warehouse.GetDeployment(ctx, pool)
	if err != nil {
		return err
	}
	switch {
	case d == nil:
		fmt.Fprintf(e.Stdout, "warehouse environment: (none yet; `mim migrate` labels it %q)\n", env)
	case d.Environment == env:
		here, err := warehouse.CurrentIdentity(ctx, pool)
		if err != nil {
			return err
		}
		if why := d.Foreign(here); why != "" {
			fmt.Fprintf(e.Stdout, "WARNING: %v\n", &warehouse.MismatchError{Configured: env, Warehouse: d.Environment, Foreign: why})
			return nil
		}
		fmt.Fprintf(e.Stdout, "warehouse environment: %s (matches this deployment; the label is this warehouse's)\n", d.Environment)
	default:
		fmt.Fprintf(e.Stdout, "WARNING: %v\n", &warehouse.MismatchError{Configured: env, Warehouse: d.Environment})
	}
	return nil
}
