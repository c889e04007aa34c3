package app

import (
	"context"
	"flag"

	"github.com/mimwarehouse/mim/internal/checks"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/moodle"
)

// CheckResult is one line of `mim check`.
type CheckResult = checks.Result

// Checker dials one kind of dependency.
type Checker func(ctx context.Context, e *Env) []CheckResult

// Check is one named checker of `mim check`.
type Check struct {
	Name string
	Run  Checker
}

// Checks is what `mim check` dials, in order: the warehouse, the Moodle
// sites, SITS and CMIS, the tutor tables, the LTI tool. `mim check` runs
// Env.Checks, which defaults to this list.
func Checks() []Check {
	return []Check{
		{"warehouse", withDeps(checks.Warehouse)},
		{"moodle", withDeps(checks.Moodle)},
		{"sql-sources", withConfig(checks.SQLSources)},
		{"tutor", withDeps(checks.Tutor)},
		{"lti", withDeps(checks.LTI)},
	}
}

// withConfig runs a check of internal/checks that needs only the
// configuration (it opens no warehouse).
func withConfig(check func(context.Context, checks.Deps) []checks.Result) Checker {
	return func(ctx context.Context, e *Env) []CheckResult {
		cfg, err := e.Config()
		if err != nil {
			return nil
		}
		return check(ctx, checks.Deps{Config: cfg})
	}
}

// withDeps runs a check of internal/checks with what e opens.
func withDeps(check func(context.Context, checks.Deps) []checks.Result) Checker {
	return func(ctx context.Context, e *Env) []CheckResult {
		cfg, err := e.Config()
		if err != nil {
			return nil
		}
		pool, perr := e.Warehouse(ctx)
		client := func(site *config.MoodleSite, opts ...moodle.Option) (*moodle.Client, error) {
			return MoodleClient(e, site, opts...)
		}
		return check(ctx, checks.Deps{Config: cfg, Pool: pool, PoolErr: perr, Client: client})
	}
}

var checkCommand = Command{
	Name:    "check",
	Group:   "Operations",
	Summary: "dial everything the configuration names and say what answers",
	Usage:   "mim check",
	Help:    helpText("check"),
	Setup: func(fs *flag.FlagSet) Runner {
		return func(ctx context.Context, e *Env, args []string) error {
			if _, err := e.Config(); err != nil {
				return err
			}
			list := e.Checks
			if list == nil {
				list = Checks()
			}
			p := checks.NewPrinter(e.Stdout)
			for _, c := range list {
				p.Print(c.Run(ctx, e))
			}
			return p.Close()
		}
	},
}
