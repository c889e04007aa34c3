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
	Help:    helpText("settings"),
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
