package catalog

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/catalog/ckantest"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/secret"
)

const token = "ckan-token-0123456789abcdef"

func martDB(t *testing.T) *pgtest.DB {
	t.Helper()
	db := pgtest.New(t)
	for _, sql := range []string{
		`CREATE TABLE mart.dim_course (instance text NOT NULL, course_idnumber text NOT NULL, course_id bigint, start_date date, visible boolean)`,
		`COMMENT ON TABLE mart.dim_course IS 'mim model built by mim transform from sql/marts/core/dim_course.sql; rebuilt every run. Moodle courses per site.'`,
		`COMMENT ON COLUMN mart.dim_course.course_id IS 'Moodle course id'`,
		`INSERT INTO mart.dim_course VALUES ('main', 'ABCD1234-A6U-T1-2025', 12, '2025-09-29', true), ('main', 'EFGH5678-A6U-T2-2025', 13, NULL, false)`,
		`CREATE VIEW mart.enrolment_drift AS SELECT 'main'::text AS instance, 'missing'::text AS kind, 3::bigint AS n, now() AS seen, '{1,2}'::bigint[] AS ids, '{}'::jsonb AS detail, 1.5::numeric AS share`,
		`CREATE TABLE mart.exp_ims_membership (instance text, user_idnumber text)`, // a feed table: not published by default
	} {
		if _, err := db.Pool.Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	return db
}

func TestSelect(t *testing.T) {
	def := []string{"mart.*", "!mart.exp_*"}
	for rel, want := range map[string]bool{"mart.dim_course": true, "mart.exp_ims_membership": false, "mart.enrolment_drift": true} {
		if got := Select(def, rel); got != want {
			t.Errorf("Select(default, %s) = %v", rel, got)
		}
	}
	if !Select([]string{"mart.*", "!mart.exp_*", "mart.exp_merge_candidates"}, "mart.exp_merge_candidates") {
		t.Error("a later pattern does not win over an earlier exclusion")
	}
}

func TestDescribe(t *testing.T) {
	db := martDB(t)
	marts, err := Describe(context.Background(), db.Pool, []string{"mart.*", "!mart.exp_*"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range marts {
		names = append(names, m.Relation)
	}
	if strings.Join(names, ",") != "mart.dim_course,mart.enrolment_drift" {
		t.Fatalf("described %v", names)
	}
	dc := marts[0]
	if dc.Rows != 2 || dc.Kind != "table" || dc.Description != "Moodle courses per site." || len(dc.Columns) != 5 {
		t.Errorf("dim_course = %+v", dc)
	}
	if c := dc.Columns[2]; c.Name != "course_id" || c.Type != "integer" || c.Comment != "Moodle course id" || !c.Nullable {
		t.Errorf("course_id column = %+v", c)
	}
	if c := dc.Columns[0]; c.Nullable {
		t.Errorf("instance is NOT NULL but described nullable: %+v", c)
	}
	var types []string
	for _, c := range marts[1].Columns {
		types = append(types, c.Type)
	}
	if strings.Join(types, ",") != "string,string,integer,datetime,array,object,number" {
		t.Errorf("drift column types %v", types)
	}
}

func publisher(t *testing.T, url string, key string) *Publisher {
	t.Helper()
	c, err := NewClient(url, secret.Secret(key))
	if err != nil {
		t.Fatal(err)
	}
	return &Publisher{Client: c, Org: "learning-technology", Prefix: "mim-", Environment: "test"}
}

func TestPublishCreatesThenUpdates(t *testing.T) {
	db := martDB(t)
	ctx := context.Background()
	ckan := ckantest.New(token, "learning-technology")
	defer ckan.Close()
	p := publisher(t, ckan.URL, token)
	marts, err := Describe(ctx, db.Pool, []string{"mart.*", "!mart.exp_*"})
	if err != nil {
		t.Fatal(err)
	}
	run, err := ledger.Begin(ctx, db.Pool, "catalog", "test", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	res := p.Publish(ctx, db.Pool, run, marts)
	if err := run.Finish(ctx, ledger.Succeeded, 0, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil || r.Action != "created" {
			t.Errorf("%s: %s %v", r.Relation, r.Action, r.Err)
		}
	}
	names := ckan.Names()
	sort.Strings(names)
	if strings.Join(names, ",") != "mim-dim-course,mim-enrolment-drift" {
		t.Fatalf("CKAN holds %v", names)
	}
	d, _ := ckan.Dataset("mim-dim-course")
	if d["owner_org"] != "learning-technology" || !strings.Contains(d["notes"].(string), "Moodle courses per site.") {
		t.Errorf("dataset = %v", d)
	}
	res0 := d["resources"].([]any)[0].(map[string]any)
	firstID := res0["id"].(string)
	if res0["row_count"].(float64) != 2 || res0["name"] != "mart.dim_course" {
		t.Errorf("resource = %v", res0)
	}
	var schema struct {
		Fields []struct {
			Name, Type  string
			Constraints map[string]bool
		}
	}
	if err := json.Unmarshal([]byte(res0["schema"].(string)), &schema); err != nil || len(schema.Fields) != 5 ||
		schema.Fields[2].Name != "course_id" || schema.Fields[2].Type != "integer" || !schema.Fields[0].Constraints["required"] {
		t.Errorf("schema %s: %v", res0["schema"], err)
	}
	// Every write carried the token, and only in the Authorization header.
	for _, r := range ckan.Requests() {
		if r.Action != "package_show" && r.Authorization != token {
			t.Errorf("%s sent Authorization %q", r.Action, r.Authorization)
		}
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM ctl.catalog_dataset WHERE action = 'created' AND run_id = $1 AND package_id <> ''`, run.ID).Scan(&n); err != nil || n != 2 {
		t.Errorf("ctl.catalog_dataset has %d created rows (%v)", n, err)
	}
	recorded, err := ledger.Steps(ctx, db.Pool, run.ID)
	steps := 0
	for _, s := range recorded {
		if s.Key.Stage == "catalog" && s.Status == ledger.Succeeded && s.Counts.New == 1 {
			steps++
		}
	}
	if err != nil || steps != 2 {
		t.Errorf("%d catalog steps (%v)", steps, err)
	}

	// The next night: more rows. The dataset is patched, not duplicated,
	// and its resource keeps its id.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO mart.dim_course VALUES ('main', 'IJKL9012-A6U-T3-2025', 14, NULL, true)`); err != nil {
		t.Fatal(err)
	}
	marts, _ = Describe(ctx, db.Pool, []string{"mart.dim_course"})
	res = p.Publish(ctx, db.Pool, nil, marts)
	if len(res) != 1 || res[0].Action != "updated" || res[0].Err != nil {
		t.Fatalf("second publish: %+v", res)
	}
	d, _ = ckan.Dataset("mim-dim-course")
	res0 = d["resources"].([]any)[0].(map[string]any)
	if len(d["resources"].([]any)) != 1 || res0["id"] != firstID || res0["row_count"].(float64) != 3 {
		t.Errorf("after the update: %v", d["resources"])
	}
	if len(ckan.Names()) != 2 {
		t.Errorf("the update created a dataset: %v", ckan.Names())
	}
	var action string
	var rows int64
	if err := db.Pool.QueryRow(ctx, `SELECT action, row_count FROM ctl.catalog_dataset WHERE relation = 'mart.dim_course'`).Scan(&action, &rows); err != nil ||
		action != "updated" || rows != 3 {
		t.Errorf("ctl.catalog_dataset: %s %d %v", action, rows, err)
	}
}

func TestPublishErrorsNeverShowTheKey(t *testing.T) {
	db := martDB(t)
	ctx := context.Background()
	ckan := ckantest.New(token, "learning-technology")
	defer ckan.Close()
	wrong := "not-the-token-but-still-secret"
	marts, err := Describe(ctx, db.Pool, []string{"mart.*", "!mart.exp_*"})
	if err != nil {
		t.Fatal(err)
	}
	res := publisher(t, ckan.URL, wrong).Publish(ctx, db.Pool, nil, marts)
	for _, r := range res {
		if r.Err == nil || r.Action != "failed" || !strings.Contains(r.Err.Error(), "Authorization Error") {
			t.Errorf("%s: %s %v", r.Relation, r.Action, r.Err)
		}
		if r.Err != nil && strings.Contains(r.Err.Error(), wrong) {
			t.Errorf("the error shows the key: %v", r.Err)
		}
	}
	// An organisation CKAN does not have: a validation error, one per mart,
	// and nothing recorded as published.
	p := publisher(t, ckan.URL, token)
	p.Org = "no-such-org"
	res = p.Publish(ctx, db.Pool, nil, marts[:1])
	if len(res) != 1 || res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "owner_org") {
		t.Errorf("unknown organisation: %+v", res)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM ctl.catalog_dataset`).Scan(&n); err != nil || n != 0 {
		t.Errorf("failed publishes were recorded: %d (%v)", n, err)
	}
	if len(ckan.Names()) != 0 {
		t.Errorf("CKAN holds %v", ckan.Names())
	}
}
