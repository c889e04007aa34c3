package demo

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/pipeline"
	"github.com/mimwarehouse/mim/internal/progress"
	"github.com/mimwarehouse/mim/load"
)

// reportedMarts are the marts whose rows the report counts.
var reportedMarts = []string{"dim_person", "dim_course", "fct_enrolment_target", "fct_enrolment_actual", "enrolment_drift",
	"exp_ims_membership", "exp_profile_fields", "exp_personal_tutor", "exp_merge_candidates", "exp_group_target", "exp_oneroster"}

// report prints the files, counts, drift and guard decisions.
func (d *demo) report(ctx context.Context, res *pipeline.Result) error {
	d.reportFiles()
	if err := d.reportRaw(ctx); err != nil {
		return err
	}
	d.reportMarts(ctx)
	if err := d.reportDrift(ctx); err != nil {
		fmt.Fprintf(d.w, "\ndrift: %v\n", err)
	}
	fmt.Fprintln(d.w, "\nguard decisions of the last run:")
	guards, err := pipeline.GuardEvents(ctx, d.pool, res.RunID)
	if err != nil {
		return err
	}
	if len(guards) == 0 {
		fmt.Fprintln(d.w, "  none recorded")
	}
	for _, g := range guards {
		fmt.Fprintf(d.w, "  %s\n", g)
	}
	return nil
}

// reportFiles lists the files under the output directory with their sizes.
func (d *demo) reportFiles() {
	fmt.Fprintf(d.w, "\nfiles in %s:\n", d.out)
	var files []string
	_ = filepath.WalkDir(d.out, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	tw := tabwriter.NewWriter(d.w, 0, 0, 2, ' ', 0)
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			continue
		}
		rel, _ := filepath.Rel(d.out, f)
		fmt.Fprintf(tw, "  %s\t%s bytes\n", rel, progress.Count(st.Size()))
	}
	tw.Flush()
	if len(files) == 0 {
		fmt.Fprintln(d.w, "  (none)")
	}
}

// reportRaw counts the live records of each source instance.
func (d *demo) reportRaw(ctx context.Context) error {
	fmt.Fprintln(d.w, "\nrecords in raw (source, instance: live records):")
	counts, err := load.LiveCounts(ctx, d.pool)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(d.w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, c := range counts {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t\n", c.Source, c.Instance, progress.Count(c.Live))
	}
	return tw.Flush()
}

// reportMarts counts the rows of the marts (or says one was not built).
func (d *demo) reportMarts(ctx context.Context) {
	fmt.Fprintln(d.w, "\nmarts (rows):")
	tw := tabwriter.NewWriter(d.w, 0, 0, 2, ' ', 0)
	for _, mart := range reportedMarts {
		var n int64
		err := d.pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{"mart", mart}.Sanitize()).Scan(&n)
		switch {
		case err != nil:
			fmt.Fprintf(tw, "  mart.%s\tnot built\n", mart)
		default:
			fmt.Fprintf(tw, "  mart.%s\t%s\n", mart, progress.Count(n))
		}
	}
	tw.Flush()
}

// reportDrift prints mart.enrolment_drift per site beside what the
// synthetic university planted (synth.Manifest: the counts the marts must
// reproduce).
func (d *demo) reportDrift(ctx context.Context) error {
	got, err := d.drift(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(d.w, "\nenrolment drift as the last run found it (mart.enrolment_drift), beside what the synthetic data planted before night 1:")
	tw := tabwriter.NewWriter(d.w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  site\tmissing\tplanted\tsuspended\tplanted\textra\tplanted\tunknown user\tplanted\t")
	for _, s := range d.in.Manifest.Sites {
		g := got[s.Site]
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", s.Site, g["missing"], s.DriftMissing, g["suspended"], s.DriftSuspended,
			g["extra"], s.DriftExtra, g["unknown_user"], s.UnknownUserRows)
	}
	return tw.Flush()
}

// drift reads the student (and extra) drift per site and kind.
func (d *demo) drift(ctx context.Context) (map[string]map[string]int64, error) {
	rows, err := d.pool.Query(ctx, `SELECT instance, kind, count(*) FROM mart.enrolment_drift WHERE role = 'student' OR kind = 'extra' GROUP BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("reading mart.enrolment_drift: %w", err)
	}
	got := map[string]map[string]int64{}
	var inst, kind string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&inst, &kind, &n}, func() error {
		if got[inst] == nil {
			got[inst] = map[string]int64{}
		}
		got[inst][kind] = n
		return nil
	})
	return got, err
}
