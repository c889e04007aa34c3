package mapping

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/warehouse"
)

// DB is the warehouse as a pool: it queries and opens transactions.
type DB interface {
	warehouse.Querier
	Begin(ctx context.Context) (pgx.Tx, error)
}

// ImportFile imports a mapping file (CSV or JSON, see ParseFile) all or
// nothing in one transaction: every problem of every row is reported with
// the file's name, and a dry run rolls everything back. It returns how many
// mappings the file holds and what the import did (or would do).
func ImportFile(ctx context.Context, db DB, file string, data []byte, d Defaults, k Knowledge, by string, dryRun bool) (int, ImportResult, error) {
	rows, probs := ParseFile(data, d, k)
	tx, err := db.Begin(ctx)
	if err != nil {
		return 0, ImportResult{}, fmt.Errorf("importing %s: %w", file, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	probs = append(probs, Resolve(ctx, tx, rows)...)
	if len(probs) > 0 {
		return 0, ImportResult{}, &FileError{File: file, Problems: probs}
	}
	res, err := Import(ctx, tx, rows, by)
	if err != nil {
		return 0, res, err
	}
	if !dryRun {
		if err := tx.Commit(ctx); err != nil {
			return 0, res, fmt.Errorf("importing %s: %w", file, err)
		}
	}
	return len(rows), res, nil
}

// DeriveAll applies rules (see Derive) in one transaction, rolled back for
// a dry run.
func DeriveAll(ctx context.Context, db DB, rules []Rule, by string, dryRun bool) (DeriveResult, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return DeriveResult{}, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	res, err := Derive(ctx, tx, rules, by)
	if err != nil || dryRun {
		return res, err
	}
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("deriving course mappings: %w", err)
	}
	return res, nil
}

// Activate activates or deactivates the mappings f selects in one
// transaction, and returns how many changed and how many match. A global
// one (global: every mapping) also freezes staff edits through the LTI
// tool, or releases them, before the change, so a staff change in flight
// either commits first and is deactivated too, or sees the freeze.
func Activate(ctx context.Context, db DB, f Filter, active, global bool, by, reason string, runID *int64) (changed int64, matching int, err error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if global {
		if _, err := FreezeEdits(ctx, tx, !active, by, reason, runID); err != nil {
			return 0, 0, err
		}
	}
	if changed, err = SetActive(ctx, tx, f, active, by, reason); err != nil {
		return 0, 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, err
	}
	all, err := List(ctx, db, f)
	if err != nil {
		return changed, 0, err
	}
	if len(all) == 0 {
		return changed, 0, errors.New("no mapping matches")
	}
	return changed, len(all), nil
}

// WriteText writes what a derive did (or would do), with its first created mappings.
func (r DeriveResult) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s\n", r)
	for _, k := range r.Sample {
		fmt.Fprintf(w, "  + %s\n", k)
	}
	if r.Created > len(r.Sample) {
		fmt.Fprintf(w, "  ... and %d more\n", r.Created-len(r.Sample))
	}
}

// WriteCSV writes mappings in the import format (CSVHeader).
func WriteCSV(w io.Writer, ms []Mapping) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(CSVHeader)
	for _, m := range ms {
		_ = cw.Write([]string{m.Instance, m.CourseIDNumber, m.SISKind, m.SISKey, m.AcademicYear, m.Section, m.CourseYear,
			m.MinRegStatus, strings.Join(m.Roles, ";"), strconv.FormatBool(m.GroupSync), strconv.FormatBool(m.Active)})
	}
	cw.Flush()
	return cw.Error()
}

// WriteTable writes mappings as `mim mappings list` shows them, with a count.
func WriteTable(w io.Writer, ms []Mapping) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSITE\tCOURSE\tKIND\tSIS KEY\tYEAR\tFILTER\tSTATUS\tROLES\tGROUPS\tACTIVE\tORIGIN\tCHANGED")
	active := 0
	for _, m := range ms {
		filter := "-"
		if m.Section != "" {
			filter = "section " + m.Section
		} else if m.CourseYear != "" {
			filter = "year " + m.CourseYear
		}
		year := m.AcademicYear
		if year == "" {
			year = "any"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%v\t%v\t%s\t%s %s\n", m.ID, m.Instance, m.CourseIDNumber, m.SISKind, m.SISKey,
			year, filter, m.MinRegStatus+"+", strings.Join(m.Roles, ","), m.GroupSync, m.Active, m.Origin,
			m.UpdatedAt.Local().Format("2006-01-02 15:04"), m.UpdatedBy)
		if m.Active {
			active++
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d mappings, %d active\n", len(ms), active)
	return nil
}

// WriteEvents writes mapping history as `mim mappings history` shows it.
func WriteEvents(w io.Writer, evs []Event) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WHEN\tBY\tACTION\tMAPPING\tSITE\tCOURSE\tDETAIL")
	for _, ev := range evs {
		id := "-"
		if ev.MappingID != nil {
			id = strconv.FormatInt(*ev.MappingID, 10)
		}
		var detail []string
		for _, k := range []string{"reason", "origin"} {
			if v, ok := ev.Detail[k]; ok {
				detail = append(detail, fmt.Sprintf("%s=%v", k, v))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.At.Local().Format("2006-01-02 15:04:05"), ev.By, ev.Action, id,
			ev.Instance, ev.CourseIDNumber, strings.Join(detail, " "))
	}
	return tw.Flush()
}
