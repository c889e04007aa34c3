package app

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/mimwarehouse/mim/internal/catalog"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/internal/wire"
)

var catalogCommand = Command{
	Name:    "catalog",
	Group:   "Operations",
	Summary: "publish the marts' descriptions (schema, row counts) to the CKAN catalog",
	Usage:   "mim catalog list|publish [--mart PATTERN]...",
	Help:    helpText("catalog"),
	Setup: func(fs *flag.FlagSet) Runner {
		var marts []string
		fs.Func("mart", "only marts matching `PATTERN` (mart.NAME or a glob; ! excludes); repeatable", listFlag(&marts))
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) != 1 || (args[0] != "list" && args[0] != "publish") {
				return Usagef("say list or publish")
			}
			return runCatalog(ctx, e, args[0] == "publish", marts)
		}
	},
}

func runCatalog(ctx context.Context, e *Env, publish bool, only []string) error {
	cfg, err := e.Config()
	if err != nil {
		return err
	}
	if publish && cfg.Catalog.URL == "" {
		return Usagef("catalog.url is not configured: there is no CKAN to publish to")
	}
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return err
	}
	patterns := cfg.Catalog.Marts
	if len(only) > 0 {
		patterns = only
	}
	marts, err := catalog.Describe(ctx, pool, patterns)
	if err != nil {
		return err
	}
	p, err := wire.CatalogPublisher(cfg, e.Logger)
	if err != nil {
		return err
	}
	if !publish {
		return p.WriteMarts(e.Stdout, marts)
	}
	if len(marts) == 0 {
		fmt.Fprintln(e.Stdout, "no mart matches catalog.marts; nothing to publish (has mim transform run?)")
		return nil
	}
	run, err := ledger.Begin(ctx, pool, "catalog", cfg.Environment, VersionString(), e.Args)
	if err != nil {
		return err
	}
	defer run.Finish(ctx, ledger.Failed, ExitFailure, errors.New("interrupted"))
	res := p.Publish(ctx, pool, run, marts)
	err = catalog.WritePublished(e.Stdout, cfg.Catalog.URL, res)
	status := ledger.Outcome(err)
	if err != nil && len(catalog.Failures(res)) < len(res) {
		status = ledger.Partial
	}
	if ferr := run.Finish(ctx, status, ExitCode(err), err); ferr != nil && err == nil {
		return ferr
	}
	return err
}

// publishCatalog publishes the configured marts under run, for `mim run`.
func publishCatalog(ctx context.Context, e *Env, q warehouse.Querier, run *ledger.Run) ([]catalog.Published, error) {
	cfg, err := e.Config()
	if err != nil {
		return nil, err
	}
	p, err := wire.CatalogPublisher(cfg, e.Logger)
	if err != nil {
		return nil, err
	}
	return p.PublishAll(ctx, q, run, cfg.Catalog.Marts)
}
