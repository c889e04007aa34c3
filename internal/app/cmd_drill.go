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
	Help: `Builds the demo world in a scratch database (a synthetic university and its
simulated Moodle sites, two good nights run), then stages each disaster MIM
exists to survive on its own copy of that world and runs the next night as
cron would:

` + drillList() + `
Each line says which guard caught the disaster and how many writes reached
Moodle (web-service writes, and the changes a delivered IMS Enterprise file
makes when Moodle's task applies it). A drill holds when a guard caught it
and not one write reached Moodle; max-input-vars, whose disaster is in the
writes, holds when every write PHP cut short is found by re-reading Moodle,
sent again, and the night is reported partial. Each night's files are then
applied as Moodle would (its IMS task, tool_uploaduser for the profile CSV).
A quiet night (nothing broken) runs first:
it must write nothing, or the drills would measure nothing.

Exit status: 0 only if every drill held, 1 otherwise, 2 for a usage error.

The scratch database is mim_drill on the local PostgreSQL that ./scripts/setup
creates (MIM_DRILL_DATABASE_URL names another); the drills' copies are made
beside it and dropped at the end. A database labelled with an environment
other than "drill" is refused, never reset.

--only runs some drills (repeatable); --verbose prints every night's report.`,
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

func drillList() string {
	var b strings.Builder
	for _, d := range drill.Drills() {
		b.WriteString("  " + d.Name + strings.Repeat(" ", max(1, 23-len(d.Name))) + d.Disaster + "\n")
	}
	return b.String()
}
