package app

import (
	"context"
	"flag"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/internal/night"
)

var exportCommand = Command{
	Name:    "export",
	Group:   "Feeds and Moodle",
	Summary: "write the feeds for Moodle (IMS Enterprise or flat file, profile CSV, tutor table, merge list, OneRoster), guarded",
	Usage:   "mim export [--dry-run] [--full] [--instance NAME]... [--feed ims|flatfile|profile|tutor|merge|oneroster]...",
	Help:    helpText("export"),
	Setup: func(fs *flag.FlagSet) Runner {
		dry := fs.Bool("dry-run", false, "compute and print what would be sent; write nothing")
		full := fs.Bool("full", false, "re-assert every membership (and every profile row) instead of the delta")
		var instances, feedNames []string
		fs.Func("instance", "only the Moodle site `NAME` (repeatable)", listFlag(&instances))
		fs.Func("feed", "only this `feed`: ims, flatfile, profile, tutor, merge or oneroster (repeatable)", listFlag(&feedNames))
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) != 0 {
				return Usagef("export takes no arguments")
			}
			opts := feeds.Options{DryRun: *dry, Full: *full, Instances: instances}
			for _, n := range feedNames {
				f, err := feeds.ParseFeed(n)
				if err != nil {
					return Usagef("--feed: %v", err)
				}
				opts.Feeds = append(opts.Feeds, f)
			}
			return runExport(ctx, e, opts)
		}
	},
}

func runExport(ctx context.Context, e *Env, opts feeds.Options) error {
	ne, err := nightEnv(e)
	if err != nil {
		return err
	}
	return usage(night.Export(ctx, ne, opts, func(sum *feeds.Summary) { sum.Write(e.Stdout) }))
}
