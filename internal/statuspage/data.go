package statuspage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pipeline"
	"github.com/mimwarehouse/mim/internal/progress"
	"github.com/mimwarehouse/mim/internal/schedule"
	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// Section is one part of the page whose data could not be read: the rest
// of the page still renders, and the section says why it is empty.
type Section[T any] struct {
	Data T
	Err  string
}

func section[T any](data T, err error) Section[T] {
	if err != nil {
		return Section[T]{Data: data, Err: err.Error()}
	}
	return Section[T]{Data: data}
}

// view is everything the page shows.
type view struct {
	Title       string
	Now         time.Time
	Environment string // configured
	Version     string
	Deployment  Section[*warehouse.Deployment]
	// Foreign says why the warehouse's label is not this warehouse's (a
	// restored or copied one); "" when it is.
	Foreign   string
	Overrides Section[[]settings.Override]
	Settings  Section[[]settingRow]
	Upcoming  []schedule.Upcoming
	Pause     Section[*schedule.Pause]
	Schedule  Section[[]scheduleEvent]
	Runs      Section[[]runRow]
	Guards    Section[[]guardRow]
	Held      Section[[]guardRow]
	Drift     Section[driftTable]
	Pending   Section[[]Pending]
	Sites     Section[[]siteRow]
	Charts    []chart
}

type settingRow struct {
	Key, Value, UpdatedBy string
	UpdatedAt             time.Time
}

type scheduleEvent struct {
	Job, Kind string
	Due, At   time.Time
	RunID     *int64
	Status    *string
	Note      *string
}

type runRow struct {
	ledger.RunSummary
	StepList []ledger.StepSummary // only for the runs shown expanded
	Groups   []stepGroup          // StepList by stage, long stages summed up
}

// stepGroup is the steps of one stage of a run. A stage with many steps
// (the transform: one per model) is summed up in Summary, and only its
// steps that did not succeed are listed.
type stepGroup struct {
	Stage   string
	Summary string
	Steps   []ledger.StepSummary
}

// longStage is the number of steps above which a stage is summed up.
const longStage = 12

func groupSteps(steps []ledger.StepSummary) []stepGroup {
	var out []stepGroup
	index := map[string]int{}
	for _, st := range steps {
		// A source's own step carries no counts; its entities do.
		if st.Key.Entity == "" && st.Counts == (ledger.Counts{}) && st.Status == ledger.Succeeded {
			continue
		}
		i, ok := index[st.Key.Stage]
		if !ok {
			i = len(out)
			index[st.Key.Stage] = i
			out = append(out, stepGroup{Stage: st.Key.Stage})
		}
		out[i].Steps = append(out[i].Steps, st)
	}
	for i := range out {
		g := &out[i]
		if len(g.Steps) <= longStage {
			continue
		}
		var rows int64
		byStatus := map[string]int{}
		var kept []ledger.StepSummary
		for _, st := range g.Steps {
			rows += st.Counts.In
			byStatus[st.Status]++
			if st.Status != ledger.Succeeded {
				kept = append(kept, st)
			}
		}
		var parts []string
		for _, status := range []string{ledger.Succeeded, ledger.Partial, ledger.Failed, ledger.Refused, ledger.Skipped, ledger.Running} {
			if byStatus[status] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", byStatus[status], status))
			}
		}
		g.Summary = fmt.Sprintf("%d steps (%s), %s rows", len(g.Steps), strings.Join(parts, ", "), progress.Count(rows))
		g.Steps = kept
	}
	return out
}

// guardRow is a guard decision; Figures writes its numbers in their units.
type guardRow = pipeline.GuardEvent

type driftTable struct {
	Built bool     // mart.enrolment_drift exists
	Kinds []string // columns, in a fixed order
	Rows  []driftRow
}

type driftRow struct {
	Instance string
	Counts   []int64 // by Kinds
	Total    int64
}

type siteRow struct {
	Instance, ConfiguredURL, Environment string
	SiteURL, Release                     *string
	LastSeen                             time.Time
}

// driftKinds are the kinds of mart.enrolment_drift in the order shown;
// kinds the mart adds later are appended.
var driftKinds = []string{"missing", "suspended", "extra", "unknown_user", "ambiguous_user", "unknown_course", "ambiguous_course"}

// pageSettings are the limits shown beside the overrides.
var pageSettings = []string{"threshold_percent", "course_drop_percent", "group_delete_budget", "group_delete_budget_percent",
	"member_remove_budget", "member_remove_budget_percent", "group_member_drop_percent", "override_hours",
	"min_mod_occ_year", "academic_year", "pending_alert_nights"}

func (h *Handler) load(ctx context.Context) *view {
	q := h.pool
	v := &view{Title: "MIM status", Now: h.now(), Environment: h.opts.Environment, Version: h.opts.Version}
	if h.opts.Upcoming != nil {
		v.Upcoming = h.opts.Upcoming()
	}
	v.Deployment = section(warehouse.GetDeployment(ctx, q))
	if d := v.Deployment.Data; d != nil {
		if here, err := warehouse.CurrentIdentity(ctx, q); err == nil {
			v.Foreign = d.Foreign(here)
		}
	}
	v.Overrides = section(settings.Overrides(ctx, q))
	v.Settings = section(readSettings(ctx, q))
	v.Pause = section(schedule.CurrentPause(ctx, q))
	v.Schedule = section(readScheduleEvents(ctx, q, 12))
	v.Runs = section(readRuns(ctx, q, h.opts.Runs, h.opts.ExpandedRuns))
	v.Guards = section(readGuards(ctx, q, `TRUE`, 30))
	// What the holding guards (courses' drops, groups' member removals) held
	// in the latest run each checked.
	v.Held = section(readGuards(ctx, q, `decision = 'held' AND run_id = (
		SELECT max(g.run_id) FROM ctl.guard_event g WHERE g.guard = ctl.guard_event.guard)`, 500))
	v.Drift = section(readDrift(ctx, q))
	if h.opts.Pending != nil {
		v.Pending = section(h.opts.Pending(ctx))
	}
	v.Sites = section(readSites(ctx, q))
	v.Charts = readCharts(ctx, q)
	return v
}

func readSettings(ctx context.Context, q warehouse.Querier) ([]settingRow, error) {
	var out []settingRow
	for _, key := range pageSettings {
		s, err := settings.Get(ctx, q, key)
		if err != nil {
			return out, err
		}
		out = append(out, settingRow{Key: s.Key, Value: s.Value, UpdatedBy: s.UpdatedBy, UpdatedAt: s.UpdatedAt})
	}
	return out, nil
}

func readScheduleEvents(ctx context.Context, q warehouse.Querier, n int) ([]scheduleEvent, error) {
	rows, err := q.Query(ctx, `SELECT job, kind, due_at, at, run_id, status, note FROM ctl.schedule_event
		WHERE kind <> 'started' ORDER BY event_id DESC LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("reading the schedule events: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (scheduleEvent, error) {
		var e scheduleEvent
		err := r.Scan(&e.Job, &e.Kind, &e.Due, &e.At, &e.RunID, &e.Status, &e.Note)
		return e, err
	})
}

func readRuns(ctx context.Context, q warehouse.Querier, n, expanded int) ([]runRow, error) {
	runs, err := ledger.Recent(ctx, q, n)
	if err != nil {
		return nil, err
	}
	out := make([]runRow, len(runs))
	for i, r := range runs {
		out[i].RunSummary = r
		if i < expanded {
			if out[i].StepList, err = ledger.Steps(ctx, q, r.ID); err != nil {
				return out, err
			}
			out[i].Groups = groupSteps(out[i].StepList)
		}
	}
	return out, nil
}

func readGuards(ctx context.Context, q warehouse.Querier, where string, n int, args ...any) ([]guardRow, error) {
	return pipeline.ReadGuardEvents(ctx, q, where, n, args...)
}

func readDrift(ctx context.Context, q warehouse.Querier) (driftTable, error) {
	var t driftTable
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('mart.enrolment_drift') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return t, err
	}
	t.Built = true
	rows, err := q.Query(ctx, `SELECT instance, kind, count(*) FROM mart.enrolment_drift GROUP BY 1, 2 ORDER BY 1, 2`)
	if err != nil {
		return t, fmt.Errorf("reading mart.enrolment_drift: %w", err)
	}
	defer rows.Close()
	t.Kinds = append(t.Kinds, driftKinds...)
	col := map[string]int{}
	for i, k := range t.Kinds {
		col[k] = i
	}
	byInstance := map[string]*driftRow{}
	var order []string
	for rows.Next() {
		var inst, kind string
		var n int64
		if err := rows.Scan(&inst, &kind, &n); err != nil {
			return t, fmt.Errorf("reading mart.enrolment_drift: %w", err)
		}
		if _, ok := col[kind]; !ok {
			col[kind] = len(t.Kinds)
			t.Kinds = append(t.Kinds, kind)
		}
		r := byInstance[inst]
		if r == nil {
			r = &driftRow{Instance: inst}
			byInstance[inst] = r
			order = append(order, inst)
		}
		for len(r.Counts) <= col[kind] {
			r.Counts = append(r.Counts, 0)
		}
		r.Counts[col[kind]] += n
		r.Total += n
	}
	if err := rows.Err(); err != nil {
		return t, fmt.Errorf("reading mart.enrolment_drift: %w", err)
	}
	for _, inst := range order {
		r := byInstance[inst]
		for len(r.Counts) < len(t.Kinds) {
			r.Counts = append(r.Counts, 0)
		}
		t.Rows = append(t.Rows, *r)
	}
	return t, nil
}

func readSites(ctx context.Context, q warehouse.Querier) ([]siteRow, error) {
	rows, err := q.Query(ctx, `SELECT instance, configured_url, environment, siteurl, release, last_seen FROM ctl.moodle_site ORDER BY instance`)
	if err != nil {
		return nil, fmt.Errorf("reading the Moodle sites: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (siteRow, error) {
		var s siteRow
		err := r.Scan(&s.Instance, &s.ConfiguredURL, &s.Environment, &s.SiteURL, &s.Release, &s.LastSeen)
		return s, err
	})
}

// chartRuns is how many runs the charts go back.
const chartRuns = 30

func readCharts(ctx context.Context, q warehouse.Querier) []chart {
	var out []chart
	add := func(title, unit string, points []ledger.SeriesPoint, err error) {
		c := seriesChart(title, unit, points)
		if err != nil {
			c.Err = fmt.Sprintf("reading %q: %v", title, err)
		}
		out = append(out, c)
	}
	points, err := ledger.ExtractRecordsPerRun(ctx, q, chartRuns)
	add("Records read per run", "records", points, err)
	points, err = readSeries(ctx, q, `
		SELECT to_char(created_at, 'YYYY-MM-DD HH24:MI'), instance, active_memberships::float8
		FROM (SELECT * FROM ctl.export_run WHERE feed IN ('ims', 'flatfile') AND status = 'published' AND active_memberships IS NOT NULL
		      ORDER BY export_id DESC LIMIT $1 * 8) e
		ORDER BY export_id`)
	add("Active memberships published, by site", "memberships", points, err)
	points, err = ledger.ExtractChangesPerRun(ctx, q, chartRuns)
	add("Records new, changed or deleted per run", "records", points, err)
	points, err = ledger.RunMinutes(ctx, q, chartRuns)
	add("Run duration (minutes)", "minutes", points, err)
	points, err = readSeries(ctx, q, `
		SELECT run_id::text, decision, count(*)::float8
		FROM ctl.guard_event WHERE run_id IN (SELECT DISTINCT run_id FROM ctl.guard_event WHERE run_id IS NOT NULL ORDER BY run_id DESC LIMIT $1)
		GROUP BY run_id, decision ORDER BY run_id`)
	add("Guard decisions per run", "decisions", points, err)
	return out
}

// readSeries reads (x label, series, value) rows in x order over the last
// chartRuns.
func readSeries(ctx context.Context, q warehouse.Querier, sql string) ([]ledger.SeriesPoint, error) {
	rows, err := q.Query(ctx, sql, chartRuns)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.SeriesPoint, error) {
		var p ledger.SeriesPoint
		err := r.Scan(&p.X, &p.Series, &p.Value)
		return p, err
	})
}

// seriesChart lays points out as a chart: an x per distinct label, in the
// order they come, a series per distinct name.
func seriesChart(title, unit string, points []ledger.SeriesPoint) chart {
	c := chart{Title: title, Unit: unit}
	xIndex := map[string]int{}
	sIndex := map[string]int{}
	for _, p := range points {
		xi, ok := xIndex[p.X]
		if !ok {
			xi = len(c.X)
			xIndex[p.X] = xi
			c.X = append(c.X, p.X)
			for i := range c.Series {
				c.Series[i].Values = append(c.Series[i].Values, nil)
			}
		}
		si, ok := sIndex[p.Series]
		if !ok {
			si = len(c.Series)
			sIndex[p.Series] = si
			c.Series = append(c.Series, series{Name: p.Series, Values: make([]*float64, len(c.X))})
		}
		v := p.Value
		c.Series[si].Values[xi] = &v
	}
	return c
}
