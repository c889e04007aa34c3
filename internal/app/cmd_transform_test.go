package app_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/ledger/ledgertest"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/load/loadtest"
)

func putRaw(t *testing.T, pool *pgxpool.Pool, source, instance, entity, key, scope string, payload any) {
	t.Helper()
	b, _ := json.Marshal(payload)
	loadtest.Put(t, pool, loadtest.Record{ID: extract.EntityID{Source: source, Instance: instance, Entity: entity}, Key: key, Scope: scope, Payload: b})
}

func scalar(t *testing.T, pool *pgxpool.Pool, sql string) string {
	t.Helper()
	var s string
	if err := pool.QueryRow(context.Background(), sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestTransformMappingsAndRolloverCommands(t *testing.T) {
	db := pgtest.New(t)
	cfg := writeConfig(t, `environment: test
warehouse: {dsn: "`+db.DSN.Reveal()+`", statement_timeout: 1m, lock_timeout: 5s}
moodle:
  - {name: main, url: https://m.example.ac.uk, token: t, environment: test}
mappings:
  rules:
    - name: occ
      pattern: '^(?P<mod>[A-Z]{3,4}\d{4})-(?P<occ>[A-Z0-9]+)-(?P<psl>[A-Z0-9_]+)-(?P<year>\d{4})$'
      sis_kind: module_occurrence
      academic_year: "{year}"
`)
	putRaw(t, db.Pool, "moodle", "main", "courses", "14", "", map[string]any{"id": 14, "shortname": "MOD1234-A7U-T1-2025", "idnumber": "MOD1234-A7U-T1-2025", "format": "topics"})
	putRaw(t, db.Pool, "moodle", "main", "courses", "15", "", map[string]any{"id": 15, "shortname": "BSC5102Winter2021", "idnumber": "BSC5102-2021W", "format": "topics"})
	putRaw(t, db.Pool, "sits", "sits", "module_inst", "I1", "", map[string]any{"mod_inst_bdo_id": "I1", "mod_code": "MOD1234", "mod_year_code": "2025"})

	code, out, errOut := mim(t, "--config", cfg, "transform", "--list")
	if code != 0 || !strings.Contains(out, "stg.moodle_course") || !strings.Contains(out, "singular tests") {
		t.Fatalf("transform --list: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = mim(t, "--config", cfg, "transform")
	if code != 0 || !strings.Contains(out, "committed:") || !strings.Contains(out, "hook derive course mappings: 2 courses, 1 matched: 1 created") {
		t.Fatalf("transform: %d\n%s%s", code, out, errOut)
	}
	if got := ledgertest.StepText(t, db.Pool, `string_agg(entity || '=' || status, ',' ORDER BY step_id)`, `stage = 'transform' AND entity IN ('stg.moodle_course', 'checks')`); got != "stg.moodle_course=succeeded,checks=succeeded" {
		t.Errorf("ledger steps: %s", got)
	}

	dir := t.TempDir()
	csvFile := filepath.Join(dir, "maps.csv")
	os.WriteFile(csvFile, []byte("course_idnumber,sis_kind,sis_key,academic_year,roles,group_sync\nBSC5102-2021W,section,BSC5102,2025,student;editingteacher,true\n"), 0o600)
	code, out, errOut = mim(t, "--config", cfg, "mappings", "import", csvFile, "--instance", "main")
	if code != 0 || !strings.Contains(out, "1 created, 0 updated, 0 unchanged") {
		t.Fatalf("import: %d\n%s%s", code, out, errOut)
	}
	jsonFile := filepath.Join(dir, "wc.json")
	os.WriteFile(jsonFile, []byte(`{"BSC5102Winter2021": {"courses": ["BSC5102"], "id": 15, "year": "2025", "roles": ["editingteacher", "student"], "group_sync": true}}`), 0o600)
	code, out, errOut = mim(t, "--config", cfg, "mappings", "import", jsonFile, "--instance", "main")
	if code != 0 || !strings.Contains(out, "(JSON): 1 mappings read; imported 0 created, 0 updated, 1 unchanged") {
		t.Fatalf("JSON re-import of the same mapping: %d\n%s%s", code, out, errOut)
	}
	os.WriteFile(csvFile, []byte("course_idnumber,sis_kind,sis_key\nX,nonsense,\n"), 0o600)
	code, _, errOut = mim(t, "--config", cfg, "mappings", "import", csvFile, "--instance", "main")
	if code != 2 || !strings.Contains(errOut, "line 2: sis_kind") || !strings.Contains(errOut, "line 2: sis_key: required") {
		t.Errorf("bad import: %d\n%s", code, errOut)
	}
	code, out, _ = mim(t, "--config", cfg, "mappings", "list", "--format", "csv")
	if code != 0 || !strings.Contains(out, "main,BSC5102-2021W,section,BSC5102,2025,,,APP,editingteacher;student,true,true") ||
		!strings.Contains(out, "main,MOD1234-A7U-T1-2025,module_occurrence,MOD1234-A7U-T1-2025,2025,,,APP,student,false,true") {
		t.Errorf("list csv: %d\n%s", code, out)
	}
	if code, _, errOut := mim(t, "--config", cfg, "mappings", "deactivate"); code != 2 || !strings.Contains(errOut, "--all, --course IDNUMBER or --id N") {
		t.Errorf("deactivate without a selection: %d %s", code, errOut)
	}

	// The rollover's dry run changes nothing.
	code, out, errOut = mim(t, "--config", cfg, "rollover", "--year", "2026")
	if code != 0 || !strings.Contains(out, "DRY RUN") || !strings.Contains(out, "1. Global deactivation: 2 active mappings") ||
		!strings.Contains(out, "NO module instances for 2026") || !strings.Contains(out, "marts rebuilt as they would be") ||
		!strings.Contains(out, `0. Schedules: NOT paused. Before applying, run `+"`"+`mim pause --reason "rollover 2026"`) ||
		!strings.Contains(out, "'mim resume' the schedules") {
		t.Fatalf("rollover dry run: %d\n%s%s", code, out, errOut)
	}
	if got := scalar(t, db.Pool, `SELECT count(*) FILTER (WHERE active)::text || '/' || (SELECT value FROM ctl.settings WHERE key = 'academic_year') FROM ctl.course_mapping`); got != "2/0" {
		t.Errorf("the dry run changed state: %s", got)
	}
	if code, out, errOut = mim(t, "--config", cfg, "pause", "--reason", "rollover 2026"); code != 0 {
		t.Fatalf("pause: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = mim(t, "--config", cfg, "rollover", "--year", "2026", "--apply", "--reason", "agreed at CAB")
	if code != 0 || !strings.Contains(out, "Done: 2 mappings deactivated") || !strings.Contains(out, "0. Schedules: paused by ") {
		t.Fatalf("rollover apply: %d\n%s%s", code, out, errOut)
	}
	if got := scalar(t, db.Pool, `SELECT count(*) FILTER (WHERE active)::text || '/' || (SELECT value FROM ctl.settings WHERE key = 'min_mod_occ_year') FROM ctl.course_mapping`); got != "0/2026" {
		t.Errorf("after the rollover: %s", got)
	}

	code, out, _ = mim(t, "--config", cfg, "mappings", "history", "--course", "BSC5102-2021W")
	if code != 0 || !strings.Contains(out, "deactivate") || !strings.Contains(out, "reason=rollover to 2026: agreed at CAB") || !strings.Contains(out, "create") {
		t.Errorf("history: %d\n%s", code, out)
	}
	// A transform after the rollover does not re-create or reactivate the derived mapping.
	if code, out, errOut := mim(t, "--config", cfg, "transform"); code != 0 || !strings.Contains(out, "0 created, 0 updated, 1 already mapped") {
		t.Errorf("transform after rollover: %d\n%s%s", code, out, errOut)
	}

	// The rollover froze staff edits; a global activation releases them,
	// a global deactivation freezes them again.
	frozen := func() string {
		return scalar(t, db.Pool, `SELECT value FROM ctl.settings WHERE key = 'staff_edits_frozen'`)
	}
	if f := frozen(); f != "true" {
		t.Errorf("after the rollover staff_edits_frozen is %s", f)
	}
	if code, out, errOut := mim(t, "--config", cfg, "mappings", "activate", "--all", "--reason", "release"); code != 0 || frozen() != "false" ||
		!strings.Contains(out, "staff edits through the LTI tool are open again") {
		t.Errorf("activate --all: %d %s%s (frozen %s)", code, out, errOut, frozen())
	}
	if code, out, errOut := mim(t, "--config", cfg, "mappings", "deactivate", "--all", "--reason", "term started"); code != 0 || frozen() != "true" ||
		!strings.Contains(out, "staff edits through the LTI tool are frozen") {
		t.Errorf("deactivate --all: %d %s%s (frozen %s)", code, out, errOut, frozen())
	}
	if code, _, _ := mim(t, "--config", cfg, "mappings", "activate", "--all", "--instance", "main"); code != 0 || frozen() != "true" {
		t.Errorf("an activation of one site released the global freeze (frozen %s)", frozen())
	}

	// A failing check: exit 1, the failure and its sample on stderr.
	models := t.TempDir()
	os.MkdirAll(filepath.Join(models, "staging", "x"), 0o755)
	os.WriteFile(filepath.Join(models, "staging", "x", "dup.sql"), []byte("-- checks: unique(k)\nSELECT 'same' AS k UNION ALL SELECT 'same'"), 0o644)
	code, _, errOut = mim(t, "--config", cfg, "transform", "--models", models)
	if code != 1 || !strings.Contains(errOut, "stg.dup: unique(k) (staging/x/dup.sql:1) failed: 1 row") || !strings.Contains(errOut, "same") {
		t.Errorf("failing check: %d\n%s", code, errOut)
	}
	if got := ledgertest.RunText(t, db.Pool, `status`, `command = 'transform'`, `ORDER BY run_id DESC LIMIT 1`); got != "failed" {
		t.Errorf("the failed transform's run is %s", got)
	}
}
