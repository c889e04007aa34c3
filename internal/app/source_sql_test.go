package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/extract/sqlsource/sqlsourcetest"
	"github.com/mimwarehouse/mim/internal/app"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/demo"
	mimnight "github.com/mimwarehouse/mim/internal/night"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/synth"
)

func TestSynthThenSourcesFromConfig(t *testing.T) {
	db := pgtest.New(t)
	dir := t.TempDir()
	manifest, csvFile, moodleDir := filepath.Join(dir, "manifest.json"), filepath.Join(dir, "mappings.csv"), filepath.Join(dir, "moodle")
	code, out, errOut := mim(t, "synth", "--scale", "small", "--dsn", db.DSN.Reveal(), "--schema-prefix", "demo_", "--mappings",
		"--manifest", manifest, "--mappings-csv", csvFile, "--moodle-json", moodleDir)
	if code != 0 {
		t.Fatalf("synth: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"demo_sismgr.ucl_bdo_v_moodle_student_enrl", "demo_moodlemgr.cmis_moodle_v_group_member",
		"schema: demo_sismgr", "course mappings:", "main", "archive",
		fmt.Sprintf("year %d", demo.CurrentAcademicYear(time.Now()))} { // --year defaults to the current academic year
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "mim:mim@") {
		t.Errorf("the DSN password is printed:\n%s", out)
	}
	var m synth.Manifest
	b, err := os.ReadFile(manifest)
	if err != nil || json.Unmarshal(b, &m) != nil || m.Students != 300 {
		t.Fatalf("manifest: %v %+v", err, m)
	}
	if st, err := os.Stat(filepath.Join(moodleDir, "main.json")); err != nil || st.Size() == 0 {
		t.Errorf("moodle json: %v", err)
	}
	if b, err := os.ReadFile(csvFile); err != nil || !strings.HasPrefix(string(b), "instance,course_idnumber,sis_kind,sis_key") {
		t.Errorf("mappings csv: %v %.80s", err, b)
	}

	// The sources a configuration names, opened the way `mim extract` does.
	cfgPath := writeConfig(t, "environment: test\nwarehouse: {dsn: \""+db.DSN.Reveal()+"\"}\nsources:\n"+
		"  sits: {driver: pgx, dsn: \""+db.DSN.Reveal()+"\", schema: DEMO_SISMGR, min_year: "+fmt.Sprint(demo.CurrentAcademicYear(time.Now()))+"}\n"+
		"  cmis: {driver: pgx, dsn: \""+db.DSN.Reveal()+"\", schema: demo_moodlemgr}\n")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	e := &mimnight.Env{Config: cfg}
	for name, want := range map[string]map[string]int{
		"sits": {"student": m.Students, "student_enrl": m.RegistrationsCurrentYear},
		"cmis": {"group_member": m.CMISGroupMembers},
	} {
		src, err := mimnight.OpenSource(context.Background(), e, name, extract.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var sink sqlsourcetest.Sink
		if err := src.Extract(context.Background(), &sink); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for entity, n := range want {
			if got := len(sink.Get(entity).Records); got != n {
				t.Errorf("%s/%s: %d records, want %d", name, entity, got, n)
			}
		}
	}
	if code, out, errOut := mim(t, "--config", cfgPath, "check"); code != 0 ||
		!strings.Contains(out, "ok  sits") || !strings.Contains(out, "9 views readable") || !strings.Contains(out, "ok  cmis") {
		t.Errorf("check: exit %d\n%s\n%s", code, out, errOut)
	}
	// Night one on a source whose views moved: a retyped and a dropped
	// column are named, view by view, before anything is read.
	exec := func(stmt string) {
		if _, err := db.Pool.Exec(context.Background(), stmt); err != nil {
			t.Fatal(err)
		}
	}
	exec(`ALTER TABLE demo_sismgr.ucl_bdo_v_moodle_module_inst ALTER COLUMN mod_credits TYPE varchar(10)`)
	exec(`ALTER TABLE demo_moodlemgr.cmis_moodle_v_group_tutor DROP COLUMN lecturer_id`)
	code, out, errOut = mim(t, "--config", cfgPath, "check")
	for _, want := range []string{
		"FAIL  sits UCL_BDO_V_MOODLE_MODULE_INST   column MOD_CREDITS is VARCHAR in the source, the contract reads it as number",
		"FAIL  cmis CMIS_MOODLE_V_GROUP_TUTOR      column LECTURER_ID is missing (the contract reads it as text)",
		"ok    sits UCL_BDO_V_MOODLE_STUDENT",
		"FAIL  sits ", "1 of 9 relations differ from the contract",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if code != 1 {
		t.Errorf("check: exit %d, want 1\n%s", code, errOut)
	}
	exec(`ALTER TABLE demo_sismgr.ucl_bdo_v_moodle_module_inst ALTER COLUMN mod_credits TYPE numeric USING mod_credits::numeric`)
	exec(`ALTER TABLE demo_moodlemgr.cmis_moodle_v_group_tutor ADD COLUMN lecturer_id varchar(10)`)

	// The same synth again changes nothing in the mappings.
	if code, out, _ := mim(t, "synth", "--dsn", db.DSN.Reveal(), "--schema-prefix", "demo_", "--mappings"); code != 0 ||
		!strings.Contains(out, "0 created, 0 updated") {
		t.Errorf("second synth: exit %d\n%s", code, out)
	}
}

// Oracle is chosen by configuration: the godror driver answers (and fails
// here, with no Oracle client), and the password stays hidden.
func TestSITSOnOracleIsChosenByConfig(t *testing.T) {
	cfgPath := writeConfig(t, "environment: test\nsources:\n  sits: {driver: godror, dsn: \"mim_reader/Tig3rPass@sits-db.invalid:1521/SIS\", schema: SISMGR}\n")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	src, err := mimnight.OpenSource(context.Background(), &mimnight.Env{Config: cfg}, "sits", extract.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var sink sqlsourcetest.Sink
	err = src.Extract(context.Background(), &sink)
	if err == nil || strings.Contains(err.Error(), "Tig3rPass") || !strings.Contains(err.Error(), "driver godror") {
		t.Fatalf("extract: %v", err)
	}
	if !strings.Contains(err.Error(), "DPI-") && !strings.Contains(err.Error(), "not built into this binary") {
		t.Errorf("not godror's own error: %v", err)
	}
	if e := sink.Get("student"); e == nil || !e.Aborted {
		t.Errorf("student must be recorded as failed: %+v", e)
	}
	code, out, errOut := mim(t, "--config", cfgPath, "check")
	if code == 0 || !strings.Contains(out, "FAIL  sits") || strings.Contains(out+errOut, "Tig3rPass") {
		t.Errorf("check: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestSynthHelpAndUsage(t *testing.T) {
	if code, out, _ := mim(t, "synth", "--help"); code != 0 || !strings.Contains(out, "-schema-prefix") || !strings.Contains(out, "<P>sismgr") {
		t.Errorf("help: %d\n%s", code, out)
	}
	if code, _, errOut := mim(t, "synth", "--scale", "huge", "--dsn", "postgres://x@127.0.0.1:1/x"); code != app.ExitUsage || !strings.Contains(errOut, "unknown scale") {
		t.Errorf("bad scale: %d %s", code, errOut)
	}
	if code, _, errOut := mim(t, "synth", "--schema-prefix", "Demo-", "--dsn", "postgres://x@127.0.0.1:1/x"); code != app.ExitUsage || !strings.Contains(errOut, "schema prefix") {
		t.Errorf("bad prefix: %d %s", code, errOut)
	}
}
