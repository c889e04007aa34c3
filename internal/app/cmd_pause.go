package app

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/mimwarehouse/mim/internal/schedule"
)

var pauseCommand = Command{
	Name:    "pause",
	Group:   "Operations",
	Summary: "hold mim serve's schedules (e.g. for the academic-year rollover) until mim resume",
	Usage:   "mim pause [--reason TEXT]",
	Help:    helpText("pause"),
	Setup: func(fs *flag.FlagSet) Runner {
		reason := fs.String("reason", "", "why the schedules are held (shown with the pause)")
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) != 0 {
				return Usagef("pause takes no arguments (did you mean --reason %q?)", args[0])
			}
			pool, err := e.Warehouse(ctx)
			if err != nil {
				return err
			}
			p, created, err := schedule.PauseSchedules(ctx, pool, Who(), *reason)
			if err != nil {
				return err
			}
			if !created {
				fmt.Fprintf(e.Stdout, "the schedules were already %s; nothing changed\n", p)
				return nil
			}
			fmt.Fprintf(e.Stdout, "schedules %s\nmim serve runs no scheduled job until `mim resume`; runs started by hand still run.\n", p)
			return nil
		}
	},
}

var resumeCommand = Command{
	Name:    "resume",
	Group:   "Operations",
	Summary: "release the schedules that mim pause held",
	Usage:   "mim resume",
	Help:    helpText("resume"),
	Setup: func(fs *flag.FlagSet) Runner {
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) != 0 {
				return Usagef("resume takes no arguments")
			}
			pool, err := e.Warehouse(ctx)
			if err != nil {
				return err
			}
			p, err := schedule.ResumeSchedules(ctx, pool, Who())
			if err != nil {
				return err
			}
			if p == nil {
				fmt.Fprintln(e.Stdout, "the schedules were not paused; nothing changed")
				return nil
			}
			fmt.Fprintf(e.Stdout, "schedules resumed (they were %s; held for %s)\n", p, p.Resumed.Sub(p.At).Round(time.Second))
			return nil
		}
	},
}
