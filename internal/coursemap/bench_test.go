package coursemap_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/internal/coursemap"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/mapping"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/synth/synthworld"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/transform"
)

// benchScale is the institution the benchmarks build: MIM_LTI_SCALE=small
// (the default), medium or ucl.
func benchScale(tb testing.TB) synth.Scale { return synthworld.ScaleFromEnv(tb, "MIM_LTI_SCALE") }

// benchWorld is the synthetic institution extracted, mapped and
// transformed, as after a night.
type benchWorld struct {
	*synthworld.World
	project   *transform.Project
	transform time.Duration
}

func newBenchWorld(b testing.TB) *benchWorld {
	b.Helper()
	w := synthworld.New(b, synthworld.Options{Synth: synth.Options{Scale: benchScale(b)}})
	w.Extract(b, true)
	w.MapAndSet(b, "bench")
	p, err := transform.LoadEmbedded()
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	if _, err := w.Transform(b, p); err != nil {
		b.Fatal(err)
	}
	bw := &benchWorld{World: w, project: p, transform: time.Since(t0)}
	bw.publish(b)
	return bw
}

// publish records the target as what Moodle was told (ctl.published_membership,
// with a published export per site), as the first night's export leaves
// it, so previews have drops to count.
func (w *benchWorld) publish(b testing.TB) {
	b.Helper()
	ctx := context.Background()
	run, err := ledger.Begin(ctx, w.DB.Pool, "export", pgtest.Environment, "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = run.Finish(ctx, ledger.Succeeded, 0, nil) }()
	for _, sql := range []string{
		`INSERT INTO ctl.export_run (run_id, instance, feed, status, active_students, active_memberships, published_at)
		 SELECT $1, instance, 'ims', 'published', count(DISTINCT user_idnumber) FILTER (WHERE roletype = '01'), count(*), now()
		 FROM mart.exp_ims_membership GROUP BY instance`,
		`INSERT INTO ctl.published_membership (instance, course_idnumber, user_idnumber, roletype, status, timeframe_begin, timeframe_end, export_id)
		 SELECT t.instance, t.course_idnumber, t.user_idnumber, t.roletype, t.status, t.timeframe_begin, t.timeframe_end, e.export_id
		 FROM mart.exp_ims_membership t JOIN ctl.export_run e ON e.instance = t.instance AND e.run_id = $1`,
	} {
		if _, err := w.DB.Pool.Exec(ctx, sql, run.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStaffSearch times the search course staff type into the LTI
// tool, over this year's SITS entities (mart.mapping_candidate), for the
// kinds of query they type, beside two floors: a plain count of the table
// (reading every row once) and the search's predicate alone on a word that
// matches nothing (every row's text looked at once).
//
//	MIM_REQUIRE_DB=1 MIM_LTI_SCALE=ucl go test ./internal/coursemap -run '^$' -bench StaffSearch -timeout 60m
func BenchmarkStaffSearch(b *testing.B) {
	w := newBenchWorld(b)
	ctx := context.Background()
	pool := w.DB.Pool
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM mart.mapping_candidate`).Scan(&rows); err != nil {
		b.Fatal(err)
	}
	var occ, word, prog string
	if err := pool.QueryRow(ctx, `SELECT code, split_part(lower(title), ' ', 2) FROM mart.mapping_candidate
		WHERE sis_kind = 'module_occurrence' ORDER BY students DESC, code LIMIT 1`).Scan(&occ, &word); err != nil {
		b.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT code FROM mart.mapping_candidate WHERE sis_kind = 'programme' ORDER BY code LIMIT 1`).Scan(&prog); err != nil {
		b.Fatal(err)
	}
	mod, _, _ := strings.Cut(occ, "-")
	queries := []struct{ name, q string }{
		{"module code", mod},
		{"module prefix", mod[:4]},
		{"occurrence key", occ},
		{"name word", word},
		{"two words", word + " t1"},
		{"programme code", prog},
		{"nothing matches", "zzqx"},
	}
	b.Run("floor: count(*) of the table", func(b *testing.B) {
		for b.Loop() {
			var n int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM mart.mapping_candidate`).Scan(&n); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("floor: the predicate alone, nothing matches", func(b *testing.B) {
		for b.Loop() {
			var n int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM mart.mapping_candidate WHERE search LIKE '%zzqx%'`).Scan(&n); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			var found int
			for b.Loop() {
				res, _, err := mapping.Search(ctx, pool, q.q, "", 50)
				if err != nil {
					b.Fatal(err)
				}
				found = len(res)
			}
			b.ReportMetric(float64(found), "results")
			b.ReportMetric(float64(rows), "candidates")
		})
	}
	fmt.Fprintf(os.Stderr, "scale %s: %d candidates in mart.mapping_candidate; queries: %v\n", benchScale(b), rows, queries)
}

// BenchmarkStaffPreview times a staff change's preview: the course's part
// of the marts built again with the change (transform.Evaluate) and the
// export's view of it, in a transaction rolled back. The reference is a
// full transform of the same warehouse (what a preview by rebuilding the
// marts would cost), printed once.
//
//	MIM_REQUIRE_DB=1 MIM_LTI_SCALE=ucl go test ./internal/coursemap -run '^$' -bench StaffPreview -timeout 60m
func BenchmarkStaffPreview(b *testing.B) {
	w := newBenchWorld(b)
	ctx := context.Background()
	pool := w.DB.Pool
	ed := coursemap.New(pool, coursemap.Options{Knowledge: wire.Knowledge(w.Cfg), Project: w.project, Export: feeds.NewPreviewer(wire.Feeds(w.Cfg))})
	var site, course string
	var id int64
	var students int
	if err := pool.QueryRow(ctx, `SELECT m.instance, m.course_idnumber, m.mapping_id, count(*) FROM ctl.course_mapping m
		JOIN mart.exp_ims_membership t ON t.instance = m.instance AND t.course_idnumber = m.course_idnumber
		WHERE m.active AND m.sis_kind = 'module_occurrence' GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 1`).Scan(&site, &course, &id, &students); err != nil {
		b.Fatal(err)
	}
	var occ string
	if err := pool.QueryRow(ctx, `SELECT sis_key FROM mart.mapping_candidate WHERE sis_kind = 'module_occurrence'
		AND sis_key NOT IN (SELECT sis_key FROM ctl.course_mapping WHERE instance = $1 AND course_idnumber = $2)
		ORDER BY students DESC LIMIT 1`, site, course).Scan(&occ); err != nil {
		b.Fatal(err)
	}
	changes := []struct {
		name string
		ch   mapping.Change
	}{
		{"remove the busiest course's mapping", mapping.Change{Action: mapping.ActionRemove, ID: id}},
		{"add the largest occurrence to it", mapping.Change{Action: mapping.ActionAdd, Kind: "module_occurrence", Key: occ, Roles: []string{"student"}}},
	}
	for _, c := range changes {
		b.Run(c.name, func(b *testing.B) {
			var ds []time.Duration
			var p *coursemap.Preview
			for b.Loop() {
				t0 := time.Now()
				var err error
				if p, err = ed.Preview(ctx, site, course, c.ch); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(t0))
			}
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			b.ReportMetric(float64(p.Export.Adds), "adds")
			b.ReportMetric(float64(p.Export.Drops), "drops")
			b.ReportMetric(float64(ds[len(ds)/2].Milliseconds()), "median-ms")
		})
	}
	fmt.Fprintf(os.Stderr, "scale %s: course %s on %s (%d memberships); a full transform took %s\n", benchScale(b), course, site, students,
		w.transform.Round(time.Millisecond))
}
