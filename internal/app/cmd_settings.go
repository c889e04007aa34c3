package app

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/mimwarehouse/mim/internal/settings"
)

func init() {
	Register(Command{
		Name:    "settings",
		Group:   "Warehouse",
		Summary: "list or change the operational settings (thresholds, overrides, academic year)",
		Usage:   "mim settings list | mim settings set KEY VALUE [--reason TEXT]",
		Help: `Settings live in the warehouse (ctl.settings), not in the configuration file,
so the integration team can change them between runs. Every change is kept in
ctl.settings_history with who made it, when and why.

The threshold rules are the incumbent MIM's: threshold_percent (75), and the
one-shot threshold_override, which must stay false unless a run with it has
been agreed; MIM resets it to false in the same transaction as the export it
let through.`,
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
					return settingsSet(ctx, e, args[1], args[2], *reason)
				}
				return Usagef("unknown action %q (use list or set)", args[0])
			}
		},
	})
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
	tw := tabwriter.NewWriter(e.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVALUE\tTYPE\tCHANGED\tBY")
	for _, s := range all {
		v := s.Value
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		if v == "" {
			v = `""`
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Key, strings.ReplaceAll(v, "\n", " "), s.Type,
			s.UpdatedAt.Local().Format("2006-01-02 15:04"), s.UpdatedBy)
	}
	return tw.Flush()
}

func settingsSet(ctx context.Context, e *Env, key, value, reason string) error {
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return err
	}
	old, err := settings.Set(ctx, pool, key, value, Who(), reason, nil)
	if err != nil {
		return err
	}
	now, err := settings.Text(ctx, pool, key)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "%s: %q -> %q\n", key, old, now)
	if key == "threshold_override" && now == "true" {
		fmt.Fprintln(e.Stdout, "note: the override lets the next export through once despite a threshold breach, then resets itself to false.")
	}
	return nil
}
