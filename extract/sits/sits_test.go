package sits_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/extract/sqlsource/sqlsourcetest"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/load"
)

// setup writes the small synthetic institution into a fresh warehouse and
// returns the SITS configuration a deployment would have for it.
func setup(t *testing.T) (*pgtest.DB, *synth.Institution, *config.SQLSource) {
	t.Helper()
	db := pgtest.New(t)
	in, err := synth.Generate(synth.Options{Scale: synth.Small})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Write(context.Background(), db.Pool, "", nil); err != nil {
		t.Fatal(err)
	}
	// The configuration is parsed as an operator would write it, defaults
	// and all; only the driver differs from production.
	cfg, err := config.Parse([]byte("environment: test\nsources:\n  sits: {driver: pgx, dsn: \"${DSN}\", schema: SISMGR}\n"),
		func(k string) (string, bool) { return db.DSN.Reveal(), k == "DSN" })
	if err != nil {
		t.Fatal(err)
	}
	return db, in, cfg.Sources.SITS
}

func TestExtractSyntheticSITS(t *testing.T) {
	_, in, cfg := setup(t)
	var sink sqlsourcetest.Sink
	var progress sqlsourcetest.Progress
	src, err := wire.NewSITS(cfg, extract.Options{Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Extract(context.Background(), &sink); err != nil {
		t.Fatal(err)
	}
	m := in.Manifest
	want := map[string]int{"faculties": m.Faculties, "department": m.Departments, "programme": m.Programmes, "route": m.Routes,
		"student": m.Students, "assignment": m.Assignments, "module_inst": m.ModuleInstances, "module_struc": m.Occurrences,
		"student_enrl": m.Registrations}
	for name, n := range want {
		e := sink.Get(name)
		if e == nil || !e.Committed || len(e.RowErrors) != 0 || len(e.Records) != n {
			t.Errorf("%s: %+v, want %d records", name, e, n)
			continue
		}
		if exp, done := progress.Get(name); exp != int64(n) || done != int64(n) {
			t.Errorf("%s progress: expected %d, done %d", name, exp, done)
		}
		if e.ID != (extract.EntityID{Source: "sits", Instance: "sits", Entity: name}) {
			t.Errorf("%s id %v", name, e.ID)
		}
	}

	// The quirks arrive as the contract says.
	depts := sink.Get("department").Payloads()
	for _, d := range in.Departments {
		key := d.BDOID
		if key == "" {
			key = "code:" + d.Code
		}
		p, ok := depts[key]
		if !ok {
			t.Errorf("department %s not keyed %q", d.Code, key)
			continue
		}
		if (d.BDOID == "") != (p["dpt_bdo_id"] == nil) || (d.FacCode == "") != (p["dpt_fac_code"] == nil) {
			t.Errorf("department %s: %v (an empty id and a missing faculty are null)", d.Code, p)
		}
	}
	insts := sink.Get("module_inst").Payloads()
	for _, mi := range in.ModuleInstances {
		p := insts[mi.BDOID]
		if p["mod_code"] != mi.ModCode || p["mod_credits"] != json.Number(mi.Credits) || p["mod_year_code"] != "2025" {
			t.Errorf("module instance %s: %v (CHAR padding trimmed, credits a number)", mi.ModCode, p)
		}
	}
	students := sink.Get("student").Payloads()
	for _, s := range in.Students {
		p := students[s.Code]
		if p["surname"] != s.Surname || (s.FirstName == "") != (p["firstname"] == nil) || (s.Email == "") != (p["email"] == nil) {
			t.Errorf("student %s: %v", s.Code, p)
		}
	}
	occs := sink.Get("module_struc").Payloads()
	for _, o := range in.Occurrences {
		p := occs[o.BDOID]
		if p["mod_occ_psl_code"] != o.PSL || (o.Start.IsZero() && p["mod_occ_start_date"] != nil) ||
			(!o.Start.IsZero() && p["mod_occ_start_date"] != o.Start.Format("2006-01-02")) {
			t.Errorf("occurrence %s: %v", o.BDOID, p)
		}
	}
	enrl := sink.Get("student_enrl").Keys()
	r := in.Registrations[0]
	if k := r.StudentCode + "|" + r.OccBDOID + "|" + r.ModDptBDOID; !contains(enrl, k) {
		t.Errorf("registration key %q missing", k)
	}
}

func contains(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

func TestMinYearKeepsTheCurrentYear(t *testing.T) {
	_, in, cfg := setup(t)
	cfg.MinYear = in.Year
	var sink sqlsourcetest.Sink
	src, err := wire.NewSITS(cfg, extract.Options{Entities: []string{"student_enrl", "module_struc", "module_inst"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Extract(context.Background(), &sink); err != nil {
		t.Fatal(err)
	}
	m := in.Manifest
	if got := len(sink.Get("module_struc").Records); got != m.OccurrencesCurrentYear || got == m.Occurrences {
		t.Errorf("occurrences: %d, want %d of %d", got, m.OccurrencesCurrentYear, m.Occurrences)
	}
	if got := len(sink.Get("student_enrl").Records); got != m.RegistrationsCurrentYear || got == m.Registrations {
		t.Errorf("registrations: %d, want %d of %d", got, m.RegistrationsCurrentYear, m.Registrations)
	}
	if got := len(sink.Get("module_inst").Records); got != m.ModuleInstances {
		t.Errorf("instances: %d", got)
	}
	if sink.Get("student") != nil {
		t.Error("student was not asked for")
	}
}

// The production path: configuration, the sits source, the raw loader, a
// real warehouse. A second night with nothing changed changes nothing.
func TestExtractThroughTheLoader(t *testing.T) {
	db, in, cfg := setup(t)
	ctx := context.Background()
	night := func() []load.Report {
		t.Helper()
		run, err := ledger.Begin(ctx, db.Pool, "extract", "test", "test", []string{"extract", "--source", "sits"})
		if err != nil {
			t.Fatal(err)
		}
		loader := load.New(db.Pool, run)
		src, err := wire.NewSITS(cfg, extract.Options{})
		if err != nil {
			t.Fatal(err)
		}
		err = src.Extract(ctx, loader)
		if ferr := run.Finish(ctx, ledger.Outcome(err), 0, err); ferr != nil {
			t.Fatal(ferr)
		}
		if err != nil {
			t.Fatal(err)
		}
		return loader.Reports()
	}
	first := night()
	if len(first) != 9 {
		t.Fatalf("%d entity reports", len(first))
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM raw.record WHERE source = 'sits' AND entity = 'student_enrl' AND scope = ''`).Scan(&n); err != nil || n != in.Manifest.Registrations {
		t.Errorf("raw student_enrl rows %d (%v), want %d", n, err, in.Manifest.Registrations)
	}
	var surname string
	s := in.Students[0]
	if err := db.Pool.QueryRow(ctx, `SELECT payload->>'surname' FROM raw.record WHERE source = 'sits' AND entity = 'student' AND key = $1`, s.Code).Scan(&surname); err != nil || surname != s.Surname {
		t.Errorf("student %s surname %q (%v), want %q", s.Code, surname, err, s.Surname)
	}
	for _, r := range night() {
		if r.Status != ledger.Succeeded || r.Result.New != 0 || r.Result.Changed != 0 || r.Result.Deleted != 0 || r.Result.Unchanged != r.Result.In {
			t.Errorf("second night %s: %+v", r.ID, r)
		}
		if strings.Contains(r.ID.String(), "student_enrl") && r.Result.In != int64(in.Manifest.Registrations) {
			t.Errorf("second night read %d registrations", r.Result.In)
		}
	}
}
