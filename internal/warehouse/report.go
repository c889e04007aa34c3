package warehouse

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"
)

// WriteStatus lists the migrations and when each was applied, as `mim
// migrate status` shows them.
func WriteStatus(w io.Writer, st []Migration) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tMIGRATION\tAPPLIED")
	for _, m := range st {
		when := "pending"
		if m.Applied {
			when = m.AppliedAt.Local().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%05d\t%s\t%s\n", m.Version, m.Name, when)
	}
	return tw.Flush()
}

// MigrateAndLabel applies every pending migration and labels the
// warehouse for env, or, with claim set, relabels it deliberately (`mim
// migrate [--claim ENV]`), reporting each step to w.
func MigrateAndLabel(ctx context.Context, pool *pgxpool.Pool, w io.Writer, logger *slog.Logger, env, claim, by string) error {
	applied, err := Migrate(ctx, pool, logger)
	for _, m := range applied {
		fmt.Fprintf(w, "applied %05d %s\n", m.Version, m.Name)
	}
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(w, "schema up to date; nothing to apply")
	}
	if claim != "" {
		prev, err := Claim(ctx, pool, claim, by)
		if err != nil {
			return err
		}
		if prev != claim {
			fmt.Fprintf(w, "warehouse claimed for environment %q (it was %q)\n", claim, prev)
		}
		return nil
	}
	d, created, err := EnsureDeployment(ctx, pool, env, by)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(w, "warehouse labelled as environment %q\n", d.Environment)
	}
	return nil
}

// DescribeDeployment writes the warehouse's label and warns when it is not
// env's, without failing: migrating a restored copy is fine, writing from
// it to Moodle is what the guards refuse.
func DescribeDeployment(ctx context.Context, q Querier, w io.Writer, env string) error {
	d, err := GetDeployment(ctx, q)
	if err != nil {
		return err
	}
	switch {
	case d == nil:
		fmt.Fprintf(w, "warehouse environment: (none yet; `mim migrate` labels it %q)\n", env)
	case d.Environment == env:
		here, err := CurrentIdentity(ctx, q)
		if err != nil {
			return err
		}
		if why := d.Foreign(here); why != "" {
			fmt.Fprintf(w, "WARNING: %v\n", &MismatchError{Configured: env, Warehouse: d.Environment, Foreign: why})
			return nil
		}
		fmt.Fprintf(w, "warehouse environment: %s (matches this deployment; the label is this warehouse's)\n", d.Environment)
	default:
		fmt.Fprintf(w, "WARNING: %v\n", &MismatchError{Configured: env, Warehouse: d.Environment})
	}
	return nil
}
