package app

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"strings"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/drill"
	"github.com/mimwarehouse/mim/internal/pipeline"
)

var drillCommand = Command{
	Name:     "drill",
	Group:    "Operations",
	Summary:  "stage the disasters MIM guards against on copies of the demo world and show each guard holding (no configuration needed)",
	Usage:    "mim drill [--only NAME]... [--verbose]",
	NoConfig: true,
	Help:     strings.Replace(helpText("drill"), "{drills}", drillList(), 1),
	Setup: func(fs *flag.FlagSet) Runner {
		var only []string
		fs.Func("only", "run only drill `NAME` (repeatable): "+strings.Join(drill.Names(), ", "), listFlag(&only))
		verbose := fs.Bool("verbose", false, "print every night's own report")
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) != 0 {
				return Usagef("drill takes no arguments (did you mean --only %s?)", args[0])
			}
			o := drill.Options{Only: only, Night: drillNight}
			if *verbose {
				o.Log = e.Stdout
			}
			rep, err := drill.Run(ctx, o)
			if rep != nil {
				if werr := rep.Write(e.Stdout); werr != nil {
					return werr
				}
			}
			if err != nil {
				return err
			}
			return rep.Err()
		}
	},
}

// drillNight is one night of a drill: mim run with the drill's
// configuration, reported to out.
func drillNight(ctx context.Context, cfg *config.Config, out io.Writer) (*pipeline.Result, error) {
	e := &Env{Stdout: out, Stderr: io.Discard, Logger: slog.New(slog.DiscardHandler), Args: []string{"drill"}}
	e.SetConfig(cfg)
	defer e.Close()
	return RunPipeline(ctx, e, RunOptions{Job: "mim drill", Progress: "off", Out: out})
}

// drillList is the list of drills help/drill.txt shows in place of
// {drills}: each one's name and the disaster it stages.
func drillList() string {
	var b strings.Builder
	for _, d := range drill.Drills() {
		b.WriteString("  " + d.Name + strings.Repeat(" ", max(1, 23-len(d.Name))) + d.Disaster + "\n")
	}
	return b.String()
}
