package mapping

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/settings"
	"github.com/mimwarehouse/mim/internal/warehouse"
)

// ExportPreviewer is what the rollover's dry run asks of the export stage:
// what the next export would send if it ran now, computed inside tx (where
// the rollover's changes have been made and the marts rebuilt, all to be
// rolled back) without writing anything outside it. The export package
// satisfies it; until it is wired in, the dry run shows what the warehouse
// alone can tell.
type ExportPreviewer interface {
	PreviewExport(ctx context.Context, tx pgx.Tx) ([]ExportPreview, error)
}

// ExportPreview is one feed of one site as the next export would write it.
type ExportPreview struct {
	Instance string
	Feed     string // ims, profile_csv, tutor, ...
	Adds     int64
	Drops    int64
	Changes  int64
	// SampleDrops describes the first drops ("CLAS0001-A4U-T1-2025: 25001234 (student)").
	SampleDrops []string
	// Decision is what the guards would decide ("threshold: refused, 0 of
	// 31,204 active memberships (0%) < 75%; threshold_override is set: would pass once").
	Decision string
}

// RolloverPlan is what `mim rollover --year Y` would do, and what it knows
// about the warehouse's readiness for the new year.
type RolloverPlan struct {
	Year int
	// The settings now.
	AcademicYear, MinModOccYear int
	ThresholdOverride           bool
	// Active mappings the global deactivation would switch off.
	ToDeactivate      []MappingCount
	ToDeactivateTotal int64
	// Module instances and occurrences per academic start year in staging;
	// nil when staging has not been built.
	SITSYears []YearCount
	// What Moodle holds from MIM (ctl.published_membership) in the courses
	// of those mappings: frozen once they are inactive.
	Published []PublishedCount
}

// MappingCount counts active mappings of one site, year and kind.
type MappingCount struct {
	Instance, AcademicYear, Kind string
	Mappings                     int64
}

// YearCount is SITS's module data for one academic start year.
type YearCount struct {
	Year                         int
	ModuleInstances, Occurrences int64
}

// PublishedCount is what the last successful exports told one site.
type PublishedCount struct {
	Instance                   string
	Courses, ActiveMemberships int64
}

// YearError refuses a rollover year.
type YearError struct{ Msg string }

func (e *YearError) Error() string { return e.Msg }

// ExitCode makes a bad year a usage error.
func (e *YearError) ExitCode() int { return 2 }

// PlanRollover reads what a rollover to year would change. It writes nothing.
func PlanRollover(ctx context.Context, q warehouse.Querier, year int) (*RolloverPlan, error) {
	if year < 1990 || year > 2100 {
		return nil, &YearError{fmt.Sprintf("--year %d is not an academic start year such as 2026", year)}
	}
	p := &RolloverPlan{Year: year}
	var err error
	if p.AcademicYear, err = settings.Int(ctx, q, "academic_year"); err != nil {
		return nil, err
	}
	if p.MinModOccYear, err = settings.Int(ctx, q, "min_mod_occ_year"); err != nil {
		return nil, err
	}
	if p.ThresholdOverride, err = settings.Bool(ctx, q, "threshold_override"); err != nil {
		return nil, err
	}
	if p.AcademicYear != 0 && year < p.AcademicYear {
		return nil, &YearError{fmt.Sprintf("--year %d is before the current academic_year %d; a rollover only moves forward (change the settings with `mim settings set` if the current value is wrong)",
			year, p.AcademicYear)}
	}
	rows, err := q.Query(ctx, `SELECT instance, academic_year, sis_kind, count(*) FROM ctl.course_mapping WHERE active
		GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("counting active course mappings: %w", err)
	}
	p.ToDeactivate, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (MappingCount, error) {
		var c MappingCount
		err := r.Scan(&c.Instance, &c.AcademicYear, &c.Kind, &c.Mappings)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("counting active course mappings: %w", err)
	}
	for _, c := range p.ToDeactivate {
		p.ToDeactivateTotal += c.Mappings
	}
	var staged bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('stg.sits_module_inst') IS NOT NULL AND to_regclass('stg.sits_module_struc') IS NOT NULL`).Scan(&staged); err != nil {
		return nil, fmt.Errorf("looking for SITS staging: %w", err)
	}
	if staged {
		rows, err := q.Query(ctx, `SELECT y, sum(i)::bigint, sum(o)::bigint FROM (
				SELECT ayr_start AS y, 1 AS i, 0 AS o FROM stg.sits_module_inst WHERE ayr_start IS NOT NULL
				UNION ALL SELECT ayr_start, 0, 1 FROM stg.sits_module_struc WHERE ayr_start IS NOT NULL) x
			GROUP BY y ORDER BY y`)
		if err != nil {
			return nil, fmt.Errorf("counting SITS modules per year: %w", err)
		}
		p.SITSYears, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (YearCount, error) {
			var c YearCount
			err := r.Scan(&c.Year, &c.ModuleInstances, &c.Occurrences)
			return c, err
		})
		if err != nil {
			return nil, fmt.Errorf("counting SITS modules per year: %w", err)
		}
		if p.SITSYears == nil {
			p.SITSYears = []YearCount{}
		}
	}
	rows, err = q.Query(ctx, `SELECT pm.instance, count(DISTINCT pm.course_idnumber), count(*) FILTER (WHERE pm.status = 1)
		FROM ctl.published_membership pm
		WHERE EXISTS (SELECT 1 FROM ctl.course_mapping m WHERE m.active AND m.instance = pm.instance AND m.course_idnumber = pm.course_idnumber)
		GROUP BY 1 ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("counting published memberships: %w", err)
	}
	p.Published, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (PublishedCount, error) {
		var c PublishedCount
		err := r.Scan(&c.Instance, &c.Courses, &c.ActiveMemberships)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("counting published memberships: %w", err)
	}
	return p, nil
}

// SITSReady reports how many module instances staging holds for the plan's
// year, and whether it holds any: the SITS views switch to a new year only
// when the registry rolls SIW_MRG_AYR over.
func (p *RolloverPlan) SITSReady() (instances int64, known bool) {
	if p.SITSYears == nil {
		return 0, false
	}
	for _, y := range p.SITSYears {
		if y.Year == p.Year {
			return y.ModuleInstances, true
		}
	}
	return 0, true
}

// SettingChange is one setting the rollover sets.
type SettingChange struct {
	Key, Old, New string
}

// Applied is what ApplyRollover did.
type Applied struct {
	Deactivated int64
	Settings    []SettingChange
}

// ApplyRollover makes the rollover's changes in tx, the incumbent's
// checklist steps 1 and 3 (step 2, the Portico block's academic year, is
// the academic_year setting here): staff edits through the LTI tool are
// frozen (the block hidden) until the release, every active mapping is
// deactivated (an event each, with the reason), and academic_year and
// min_mod_occ_year become the new year. No override is armed: the export
// measures its threshold only over courses that are not frozen, so the
// deactivated courses are not a drop, and the new year's courses are
// measured on their own (an override armed "just in case" would let a real
// disaster through instead). The caller commits (--apply) or rolls back (the
// dry run).
func ApplyRollover(ctx context.Context, tx pgx.Tx, p *RolloverPlan, by, reason string, runID *int64) (Applied, error) {
	var a Applied
	why := fmt.Sprintf("rollover to %d", p.Year)
	if reason != "" {
		why += ": " + reason
	}
	// The freeze first: a staff change in flight commits before it (and is
	// deactivated below) or waits and sees it.
	frozen, err := FreezeEdits(ctx, tx, true, by, why, runID)
	if err != nil {
		return a, err
	}
	n, err := SetActive(ctx, tx, Filter{}, false, by, why)
	if err != nil {
		return a, err
	}
	a.Deactivated = n
	year := strconv.Itoa(p.Year)
	for _, s := range []struct{ key, value string }{
		{"academic_year", year}, {"min_mod_occ_year", year},
	} {
		old, err := settings.Set(ctx, tx, s.key, s.value, by, why, runID)
		if err != nil {
			return a, err
		}
		a.Settings = append(a.Settings, SettingChange{Key: s.key, Old: old, New: s.value})
	}
	a.Settings = append(a.Settings, SettingChange{Key: SettingEditsFrozen, Old: frozen, New: "true"})
	return a, nil
}
