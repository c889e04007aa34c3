// Package checks is what `mim check` dials: the warehouse, each Moodle
// site (who answers, what its token may read and write, its real
// max_input_vars, its database when read from one), each site's
// personal-tutor table, SITS and CMIS (every SELECT of their contracts)
// and the LTI tool. Each check returns result lines; none writes anything.
package checks

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/moodle"
)

// Result is one line of `mim check`.
type Result struct {
	Target string // what was dialled: "warehouse", "moodle:main", "sits"
	OK     bool
	// Warn marks an OK result that could not be verified: printed "warn",
	// it does not fail the check.
	Warn   bool
	Detail string
}

// Deps are what the checks dial with.
type Deps struct {
	Config *config.Config
	// Pool is the warehouse, nil when it could not be opened (PoolErr says why).
	Pool    *pgxpool.Pool
	PoolErr error
	// Client builds a site's web-service client as every command does.
	Client func(site *config.MoodleSite, opts ...moodle.Option) (*moodle.Client, error)
}

// Warehouse checks the connection, the migrations and the environment label.
func Warehouse(ctx context.Context, d Deps) []Result {
	r := Result{Target: "warehouse"}
	if d.PoolErr != nil {
		r.Detail = d.PoolErr.Error()
		return []Result{r}
	}
	var version string
	if err := d.Pool.QueryRow(ctx, `SELECT current_setting('server_version')`).Scan(&version); err != nil {
		r.Detail = err.Error()
		return []Result{r}
	}
	pending, err := warehouse.Pending(ctx, d.Pool)
	switch {
	case err != nil:
		r.Detail = err.Error()
	case pending > 0:
		r.Detail = fmt.Sprintf("PostgreSQL %s; %d migration(s) pending: run `mim migrate`", version, pending)
	default:
		r.OK = true
		r.Detail = fmt.Sprintf("PostgreSQL %s at %s; schema up to date", version, d.Config.Warehouse.DSN)
	}
	out := []Result{r}
	if r.OK {
		l := Result{Target: "warehouse environment"}
		if err := warehouse.CheckDeployment(ctx, d.Pool, d.Config.Environment); err != nil {
			l.Detail = err.Error()
		} else {
			l.OK = true
			l.Detail = fmt.Sprintf("labelled %q, as configured", d.Config.Environment)
		}
		out = append(out, l)
	}
	return out
}

// Printer writes result lines as `mim check` shows them, "ok", "warn" or
// "FAIL" before each target, and counts the failures.
type Printer struct {
	tw     *tabwriter.Writer
	failed int
}

// NewPrinter writes to w.
func NewPrinter(w io.Writer) *Printer {
	return &Printer{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
}

// Print writes one check's results.
func (p *Printer) Print(rs []Result) {
	for _, r := range rs {
		mark := "ok"
		if r.Warn {
			mark = "warn"
		}
		if !r.OK {
			mark = "FAIL"
			p.failed++
		}
		fmt.Fprintf(p.tw, "%s\t%s\t%s\n", mark, r.Target, r.Detail)
	}
}

// Close flushes the lines; the error says how many checks failed.
func (p *Printer) Close() error {
	p.tw.Flush()
	if p.failed > 0 {
		return fmt.Errorf("%d check(s) failed", p.failed)
	}
	return nil
}
