package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Failures are the errors of the marts that were not published.
func Failures(res []Published) []error {
	var out []error
	for _, r := range res {
		if r.Err != nil {
			out = append(out, r.Err)
		}
	}
	return out
}

// PublishAll publishes the marts patterns select under run (`mim run`'s
// step); the error names how many failed, the others are published.
func (p *Publisher) PublishAll(ctx context.Context, q warehouse.Querier, run *ledger.Run, patterns []string) ([]Published, error) {
	marts, err := Describe(ctx, q, patterns)
	if err != nil {
		return nil, err
	}
	res := p.Publish(ctx, q, run, marts)
	if failed := Failures(res); len(failed) > 0 {
		return res, fmt.Errorf("publishing to the catalog: %d of %d marts failed: %w", len(failed), len(res), errors.Join(failed...))
	}
	return res, nil
}

// WriteMarts lists marts with their dataset names, as `mim catalog list` does.
func (p *Publisher) WriteMarts(w io.Writer, marts []Mart) error {
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

// WritePublished reports what a publish to url did; the error says how
// many marts were not published.
func WritePublished(w io.Writer, url string, res []Published) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "MART\tDATASET\tROWS\tACTION\n")
	for _, r := range res {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.Relation, r.Dataset, r.Rows, r.Action)
	}
	tw.Flush()
	failed := Failures(res)
	for _, err := range failed {
		fmt.Fprintf(w, "  %v\n", err)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d marts were not published to %s", len(failed), len(res), url)
	}
	fmt.Fprintf(w, "published %d marts to %s\n", len(res), url)
	return nil
}
