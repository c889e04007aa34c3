package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/mimwarehouse/mim/internal/catalog"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

var catalogCommand = Command{
	Name:    "catalog",
	Group:   "Operations",
	Summary: "publish the marts' descriptions (schema, row counts) to the CKAN catalog",
	Usage:   "mim catalog list|publish [--mart PATTERN]...",
	Help: `list shows the marts the configuration publishes (catalog.marts: globs over
mart.NAME, a leading ! excludes; by default every mart except the exp_* feed
tables, which hold personal data) with their CKAN dataset names, row counts
and column counts. It contacts nothing.

publish creates or updates one CKAN dataset per mart in catalog.organization:
package_show, then package_create or package_patch. A dataset carries the
mart's description, and one resource describing the relation: its column
schema (a Frictionless Table Schema) and its row count. Rows are never sent.
The API key (catalog.api_key) goes only in the Authorization header. What CKAN
holds is recorded in ctl.catalog_dataset and the run in the ledger.

mim run publishes after each transform when catalog.url is set.

Exit status 1 if any mart could not be published (the others were).`,
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
	p, err := catalogPublisher(e, cfg)
	if err != nil {
		return err
	}
	if !publish {
		return writeMarts(e.Stdout, p, marts)
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
	err = writePublished(e.Stdout, cfg.Catalog.URL, res)
	status := ledger.Outcome(err)
	if err != nil && len(catalogFailures(res)) < len(res) {
		status = ledger.Partial
	}
	if ferr := run.Finish(ctx, status, ExitCode(err), err); ferr != nil && err == nil {
		return ferr
	}
	return err
}

// catalogPublisher builds the publisher the configuration describes; with
// no catalog.url its client is nil (list only).
func catalogPublisher(e *Env, cfg *config.Config) (*catalog.Publisher, error) {
	p := &catalog.Publisher{Org: cfg.Catalog.Organization, Prefix: cfg.Catalog.DatasetPrefix, Environment: cfg.Environment, Logger: e.Logger}
	if cfg.Catalog.URL != "" {
		c, err := catalog.NewClient(cfg.Catalog.URL, cfg.Catalog.APIKey)
		if err != nil {
			return nil, err
		}
		p.Client = c
	}
	return p, nil
}

// publishCatalog publishes the configured marts under run, for `mim run`.
func publishCatalog(ctx context.Context, e *Env, q warehouse.Querier, run *ledger.Run) ([]catalog.Published, error) {
	cfg, err := e.Config()
	if err != nil {
		return nil, err
	}
	marts, err := catalog.Describe(ctx, q, cfg.Catalog.Marts)
	if err != nil {
		return nil, err
	}
	p, err := catalogPublisher(e, cfg)
	if err != nil {
		return nil, err
	}
	res := p.Publish(ctx, q, run, marts)
	if failed := catalogFailures(res); len(failed) > 0 {
		return res, fmt.Errorf("publishing to the catalog: %d of %d marts failed: %w", len(failed), len(res), errors.Join(failed...))
	}
	return res, nil
}

func catalogFailures(res []catalog.Published) []error {
	var out []error
	for _, r := range res {
		if r.Err != nil {
			out = append(out, r.Err)
		}
	}
	return out
}

func writeMarts(w io.Writer, p *catalog.Publisher, marts []catalog.Mart) error {
	if len(marts) == 0 {
		fmt.Fprintln(w, "no mart matches catalog.marts (has mim transform run?)")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MART\tKIND\tROWS\tCOLUMNS\tDATASET")
	for _, m := range marts {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", m.Relation, m.Kind, m.Rows, len(m.Columns), p.DatasetName(m.Relation))
	}
	return tw.Flush()
}

func writePublished(w io.Writer, url string, res []catalog.Published) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "MART\tDATASET\tROWS\tACTION\n")
	for _, r := range res {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.Relation, r.Dataset, r.Rows, r.Action)
	}
	tw.Flush()
	failed := catalogFailures(res)
	for _, err := range failed {
		fmt.Fprintf(w, "  %v\n", err)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d marts were not published to %s", len(failed), len(res), url)
	}
	fmt.Fprintf(w, "published %d marts to %s\n", len(res), url)
	return nil
}
