package app

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/mimwarehouse/mim/internal/config"
)

// DemoDSN is the database `mim demo` uses unless MIM_DEMO_DATABASE_URL says otherwise.
const DemoDSN = "postgres://mim:mim@127.0.0.1:5432/mim_demo?sslmode=disable"

func init() {
	Register(Command{
		Name:     "demo",
		Group:    "Operations",
		Summary:  "run MIM on a built-in demo against the local PostgreSQL (no configuration needed)",
		Usage:    "mim demo",
		NoConfig: true,
		Help: `The demo uses the database mim_demo on the local PostgreSQL that ./scripts/setup
creates (override with MIM_DEMO_DATABASE_URL), labelled environment "demo".
It migrates the warehouse and shows its status.`,
		Setup: func(fs *flag.FlagSet) Runner {
			return func(ctx context.Context, e *Env, args []string) error {
				if len(args) != 0 {
					return Usagef("demo takes no arguments")
				}
				e.SetConfig(DemoConfig())
				fmt.Fprintln(e.Stdout, "== migrating the demo warehouse")
				if err := runMigrate(ctx, e, "up", ""); err != nil {
					return err
				}
				fmt.Fprintln(e.Stdout, "\n== status")
				return printStatus(ctx, e, 10)
			}
		},
	})
}

// DemoConfig is the configuration `mim demo` runs with.
func DemoConfig() *config.Config {
	dsn := os.Getenv("MIM_DEMO_DATABASE_URL")
	if dsn == "" {
		dsn = DemoDSN
	}
	cfg, err := config.Parse([]byte("environment: demo\nwarehouse: {dsn: \"${DSN}\"}\n"), func(k string) (string, bool) {
		if k == "DSN" {
			return dsn, true
		}
		return "", false
	})
	if err != nil {
		panic("demo configuration: " + err.Error()) // a programming error
	}
	return cfg
}
