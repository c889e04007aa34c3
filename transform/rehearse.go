package transform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
)

// Rehearse rebuilds the embedded project's marts inside tx, which the
// caller rolls back (the rollover's dry run), and writes to w how it went:
// a failed check is reported, not an error, since a real transform would
// keep yesterday's marts; any other failure is.
func Rehearse(ctx context.Context, tx pgx.Tx, opts Options, w io.Writer) error {
	p, err := LoadEmbedded()
	if err != nil {
		return err
	}
	t0 := time.Now()
	res, err := Execute(ctx, tx, p, opts)
	var ce *CheckError
	switch {
	case errors.As(err, &ce):
		fmt.Fprintf(w, "   the marts were rebuilt, but %d checks would fail (a real transform would keep yesterday's marts):\n", len(ce.Failures))
		for _, f := range ce.Failures {
			fmt.Fprintf(w, "   - %s\n", f)
		}
	case err != nil:
		return fmt.Errorf("rebuilding the marts in the rehearsal: %w", err)
	default:
		fmt.Fprintf(w, "   marts rebuilt as they would be: %d models in %s\n", len(res.Models), time.Since(t0).Round(time.Millisecond))
	}
	return nil
}
