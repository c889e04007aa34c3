package settings

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/mimwarehouse/mim/internal/warehouse"
)

// WriteTable lists settings as `mim settings list` shows them: long
// values cut to 40 characters, on one line.
func WriteTable(w io.Writer, all []Setting) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVALUE\tTYPE\tCHANGED\tBY")
	for _, s := range all {
		v := s.Value
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		if v == "" {
			v = `""`
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Key, strings.ReplaceAll(v, "\n", " "), s.Type,
			s.UpdatedAt.Local().Format("2006-01-02 15:04"), s.UpdatedBy)
	}
	return tw.Flush()
}

// SetAndReport sets key (see Set) and writes the change to w, and for a
// one-shot override what arming it means.
func SetAndReport(ctx context.Context, q warehouse.Querier, w io.Writer, key, value, by, reason string) error {
	old, err := Set(ctx, q, key, value, by, reason, nil)
	if err != nil {
		return err
	}
	now, err := Text(ctx, q, key)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: %q -> %q\n", key, old, now)
	s, err := Get(ctx, q, key)
	if err != nil || s.Type != TypeOverride {
		return err
	}
	os, err := Overrides(ctx, q)
	if err != nil {
		return err
	}
	for _, o := range os {
		if o.Key == key {
			fmt.Fprintln(w, o.Describe())
		}
	}
	return nil
}
