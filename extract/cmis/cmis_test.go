package cmis_test

import (
	"context"
	"encoding/json"
	"strconv"
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

func TestExtractSyntheticCMIS(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	in, err := synth.Generate(synth.Options{Scale: synth.Small})
	if err != nil {
		t.Fatal(err)
	}
	// Written under a prefix, as a shared database would hold several.
	if _, err := in.Write(ctx, db.Pool, "demo_", nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte("environment: test\nsources:\n  cmis: {driver: pgx, dsn: \"${DSN}\", schema: DEMO_MOODLEMGR}\n"),
		func(k string) (string, bool) { return db.DSN.Reveal(), k == "DSN" })
	if err != nil {
		t.Fatal(err)
	}
	var sink sqlsourcetest.Sink
	src, err := wire.NewCMIS(cfg.Sources.CMIS, extract.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Extract(ctx, &sink); err != nil {
		t.Fatal(err)
	}
	m := in.Manifest
	for name, n := range map[string]int{"module_group": m.CMISGroups, "group_member": m.CMISGroupMembers, "group_tutor": m.CMISGroupTutors} {
		if e := sink.Get(name); e == nil || !e.Committed || len(e.Records) != n || len(e.RowErrors) != 0 {
			t.Errorf("%s: %+v, want %d records", name, e, n)
		}
	}
	groups := sink.Get("module_group").Payloads()
	for _, g := range in.Groups {
		p := groups[g.BDOID]
		if p["group_num"] != json.Number(strconv.Itoa(g.Num)) || p["inst_code"] != g.InstCode || p["setid"] != "LIVE-25-26" {
			t.Errorf("group %s: %v", g.BDOID, p)
		}
	}
	gm := in.GroupMembers[0]
	p, ok := sink.Get("group_member").Payloads()[gm.GroupBDOID+"|"+gm.StudentCode]
	if !ok || p["student_code"] != gm.StudentCode || len(gm.StudentCode) != 9 {
		t.Errorf("member %v: %v (the 9-digit code is kept as read)", gm, p)
	}

	// And through the loader into raw.
	run, err := ledger.Begin(ctx, db.Pool, "extract", "test", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = src.Extract(ctx, load.New(db.Pool, run))
	_ = run.Finish(ctx, ledger.Outcome(err), 0, err)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM raw.record WHERE source = 'cmis' AND instance = 'cmis' AND entity = 'group_member'`).Scan(&n); err != nil || n != m.CMISGroupMembers {
		t.Errorf("raw group_member rows %d (%v), want %d", n, err, m.CMISGroupMembers)
	}
}
