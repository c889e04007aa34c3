package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/mimwarehouse/mim/internal/app"
	"github.com/mimwarehouse/mim/internal/demo"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/observe"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/synth"
	"github.com/mimwarehouse/mim/transform"
)

// warehouseTx is a migrated warehouse with every model built (over an
// empty raw, plus a few ledger rows) inside a transaction the test rolls
// back: the queries are checked against the relations the transform makes
// whether or not its checks would pass on empty data.
func warehouseTx(t *testing.T) pgx.Tx {
	t.Helper()
	db := pgtest.New(t)
	ctx := context.Background()
	run, err := ledger.Begin(ctx, db.Pool, "run", "test", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	step, err := run.Step(ctx, ledger.StepKey{Stage: "extract", Source: "sits", Instance: "sits", Entity: "student"})
	if err != nil {
		t.Fatal(err)
	}
	_ = step.Finish(ctx, ledger.Succeeded, ledger.Counts{In: 3, New: 3}, nil, nil)
	_ = run.Finish(ctx, ledger.Succeeded, 0, nil)
	for _, sql := range []string{
		`INSERT INTO ctl.guard_event (run_id, instance, guard, decision, subject, previous, current, percent, limit_value)
		 VALUES (1, 'main', 'course_drop', 'held', 'ABCD1234-A6U-T1-2025', 40, 2, 5, 50)`,
		`INSERT INTO ctl.export_run (run_id, instance, feed, status, active_students, active_memberships, counts)
		 VALUES (1, 'main', 'ims', 'published', 10, 20, '{"adds": 20, "drops": 0}')`,
		`INSERT INTO ctl.schedule_event (job, schedule, due_at, kind, note, host) VALUES ('nightly', '@daily', now(), 'missed', 'down', 'h')`,
	} {
		if _, err := db.Pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	p, err := transform.LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	res, err := transform.Execute(ctx, tx, p, transform.Options{})
	if res == nil || len(res.Models) != len(p.Models()) {
		t.Fatalf("building the models: %v", err)
	}
	return tx
}

// try runs sql in a savepoint, so one failure does not hide the others.
func try(t *testing.T, tx pgx.Tx, where, sql string) {
	t.Helper()
	ctx := context.Background()
	sp, err := tx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Rollback(ctx)
	rows, err := sp.Query(ctx, sql)
	if err == nil {
		for rows.Next() {
		}
		rows.Close()
		err = rows.Err()
	}
	if err != nil {
		t.Errorf("%s: %v\n%s", where, err, sql)
	}
}

var grafanaMacros = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\$__timeFilter\(([^)]+)\)`), `$1 BETWEEN now() - interval '30 days' AND now()`},
	{regexp.MustCompile(`\$__timeFrom\(\)`), `(now() - interval '30 days')`},
	{regexp.MustCompile(`\$__timeTo\(\)`), `now()`},
}

// expand replaces the Grafana macros and dashboard variables a query may
// use; anything else starting with $ is an error.
func expand(sql string, vars map[string]string) (string, error) {
	for _, m := range grafanaMacros {
		sql = m.re.ReplaceAllString(sql, m.with)
	}
	var err error
	sql = regexp.MustCompile(`\$\{?([A-Za-z_]\w*)\}?`).ReplaceAllStringFunc(sql, func(s string) string {
		name := strings.Trim(s, "${}")
		if v, ok := vars[name]; ok {
			return v
		}
		err = fmt.Errorf("unknown macro or variable %s", s)
		return s
	})
	return sql, err
}

type grafanaTarget struct {
	RefID      string `json:"refId"`
	Datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	RawSQL string `json:"rawSql"`
	Expr   string `json:"expr"`
}

type grafanaPanel struct {
	ID      int             `json:"id"`
	Title   string          `json:"title"`
	Targets []grafanaTarget `json:"targets"`
	Panels  []grafanaPanel  `json:"panels"` // rows
}

type grafanaDashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Query      any    `json:"query"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []grafanaPanel `json:"panels"`
}

func dashboardsIn(t *testing.T) map[string]grafanaDashboard {
	t.Helper()
	out := map[string]grafanaDashboard{}
	files, err := fs.Glob(FS, "grafana/dashboards/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards (%v)", err)
	}
	for _, f := range files {
		b, _ := fs.ReadFile(FS, f)
		var d grafanaDashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = d
	}
	return out
}

func flatten(ps []grafanaPanel) []grafanaPanel {
	var out []grafanaPanel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}

// datasources are the uids the provisioning defines, by type.
func datasources(t *testing.T) map[string]string {
	t.Helper()
	b, err := fs.ReadFile(FS, "grafana/provisioning/datasources/mim.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range p.Datasources {
		out[d.UID] = d.Type
	}
	return out
}

func TestEveryDashboardQueryRuns(t *testing.T) {
	tx := warehouseTx(t)
	sources := datasources(t)
	metrics := knownMetrics(t)
	var sqlCount, promCount int
	for file, d := range dashboardsIn(t) {
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: a dashboard needs a uid and a title", file)
		}
		vars := map[string]string{}
		for _, v := range d.Templating.List {
			vars[v.Name] = "'main', 'archive'"
			if q, ok := v.Query.(string); ok && v.Type == "query" {
				sql, err := expand(q, nil)
				if err != nil {
					t.Errorf("%s: variable %s: %v", file, v.Name, err)
				}
				try(t, tx, file+": variable "+v.Name, sql)
				sqlCount++
			}
		}
		ids := map[int]bool{}
		for _, p := range flatten(d.Panels) {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d is used twice", file, p.ID)
			}
			ids[p.ID] = true
			for _, tg := range p.Targets {
				where := fmt.Sprintf("%s: panel %q", file, p.Title)
				typ, ok := sources[tg.Datasource.UID]
				if !ok || typ != tg.Datasource.Type {
					t.Errorf("%s: datasource %s/%s is not provisioned", where, tg.Datasource.Type, tg.Datasource.UID)
				}
				switch {
				case tg.RawSQL != "":
					sql, err := expand(tg.RawSQL, vars)
					if err != nil {
						t.Errorf("%s: %v", where, err)
						continue
					}
					try(t, tx, where, sql)
					sqlCount++
				case tg.Expr != "":
					checkPromQL(t, where, tg.Expr, metrics)
					promCount++
				default:
					t.Errorf("%s: a target with neither SQL nor PromQL", where)
				}
			}
		}
	}
	t.Logf("%d SQL queries and %d PromQL expressions checked", sqlCount, promCount)
	if sqlCount < 10 || promCount < 5 {
		t.Errorf("only %d SQL and %d PromQL targets found: are the dashboards read?", sqlCount, promCount)
	}
}

// metricInfo is a metric's labels.
type metricInfo struct{ labels []string }

var descRE = regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)

// knownMetrics are the metrics MIM registers, from their descriptors (a
// vector with no child yet does not show in Gather).
func knownMetrics(t *testing.T) map[string]metricInfo {
	t.Helper()
	m := observe.NewMetrics()
	collectors := []prometheus.Collector{m.LiveRequests, m.LiveRequestSeconds, observe.NewLedger(nil)}
	out := map[string]metricInfo{}
	for _, c := range collectors {
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if s := descRE.FindStringSubmatch(d.String()); s != nil {
				var labels []string
				for _, l := range strings.Split(s[2], ",") {
					if l = strings.TrimSpace(l); l != "" {
						labels = append(labels, l)
					}
				}
				out[s[1]] = metricInfo{labels: labels}
			}
		}
	}
	if _, ok := out["mim_stage_runs_total"]; !ok || len(out) < 12 {
		t.Fatalf("could not read the metrics' descriptors: %v", out)
	}
	return out
}

var (
	promMetric   = regexp.MustCompile(`\b(mim_[a-z0-9_]+)\b(\{[^}]*\})?`)
	promMatcher  = regexp.MustCompile(`([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"`)
	histSuffixes = []string{"_bucket", "_sum", "_count"}
	promBy       = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
)

// checkPromQL checks what can be checked without Prometheus's parser:
// brackets balance, every mim_ metric exists, and its label matchers name
// labels the metric has.
func checkPromQL(t *testing.T, where, expr string, known map[string]metricInfo) {
	t.Helper()
	depth := map[rune]int{}
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inString := false
	for _, r := range expr {
		switch {
		case r == '"':
			inString = !inString
		case inString:
		case r == '(' || r == '[' || r == '{':
			depth[r]++
		case pairs[r] != 0:
			depth[pairs[r]]--
			if depth[pairs[r]] < 0 {
				t.Errorf("%s: unbalanced %c in %s", where, r, expr)
			}
		}
	}
	for open, n := range depth {
		if n != 0 {
			t.Errorf("%s: unbalanced %c in %s", where, open, expr)
		}
	}
	found := false
	for _, m := range promMetric.FindAllStringSubmatch(expr, -1) {
		found = true
		name := m[1]
		info, ok := known[name]
		for _, suf := range histSuffixes {
			if !ok && strings.HasSuffix(name, suf) {
				info, ok = known[strings.TrimSuffix(name, suf)]
				if ok && suf == "_bucket" {
					info.labels = append(slices.Clone(info.labels), "le")
				}
			}
		}
		if !ok {
			t.Errorf("%s: metric %s does not exist in internal/observe", where, name)
			continue
		}
		for _, lm := range promMatcher.FindAllStringSubmatch(m[2], -1) {
			if !slices.Contains(info.labels, lm[1]) {
				t.Errorf("%s: %s has no label %q (labels: %v)", where, name, lm[1], info.labels)
			}
		}
	}
	// Aggregations group by labels some metric of the expression has
	// (Prometheus would silently group everything into one series).
	var all []string
	for _, m := range promMetric.FindAllStringSubmatch(expr, -1) {
		info := known[m[1]]
		for _, suf := range histSuffixes {
			if i, ok := known[strings.TrimSuffix(m[1], suf)]; ok && strings.HasSuffix(m[1], suf) {
				info = i
				if suf == "_bucket" {
					all = append(all, "le")
				}
			}
		}
		all = append(all, info.labels...)
	}
	for _, by := range promBy.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(by[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(all, l) {
				t.Errorf("%s: groups by %q, which none of its metrics has (%v)", where, l, all)
			}
		}
	}
	if !found && !strings.Contains(expr, "up{") {
		t.Errorf("%s: %s reads no MIM metric", where, expr)
	}
}

func TestPrometheusConfigAndAlerts(t *testing.T) {
	metrics := knownMetrics(t)
	b, err := fs.ReadFile(FS, "prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.ScrapeConfigs) != 1 || cfg.ScrapeConfigs[0].JobName != "mim" || cfg.ScrapeConfigs[0].MetricsPath != "/metrics" ||
		len(cfg.ScrapeConfigs[0].StaticConfigs) == 0 || len(cfg.ScrapeConfigs[0].StaticConfigs[0].Targets) == 0 {
		t.Errorf("scrape configuration: %+v", cfg.ScrapeConfigs)
	}
	var alerts []string
	for _, rf := range cfg.RuleFiles {
		rb, err := fs.ReadFile(FS, path.Join("prometheus", rf))
		if err != nil {
			t.Errorf("rule file %s: %v", rf, err)
			continue
		}
		var rules struct {
			Groups []struct {
				Name  string `yaml:"name"`
				Rules []struct {
					Alert       string            `yaml:"alert"`
					Expr        string            `yaml:"expr"`
					For         string            `yaml:"for"`
					Labels      map[string]string `yaml:"labels"`
					Annotations map[string]string `yaml:"annotations"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		dec := yaml.NewDecoder(strings.NewReader(string(rb)))
		dec.KnownFields(true)
		if err := dec.Decode(&rules); err != nil {
			t.Fatalf("%s: %v", rf, err)
		}
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				where := rf + ": " + r.Alert
				if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
					t.Errorf("%s: an alert needs alert, expr, labels.severity and annotations.summary", where)
				}
				checkPromQL(t, where, r.Expr, metrics)
				alerts = append(alerts, r.Alert)
			}
		}
	}
	// The three alerts.
	for _, want := range []string{"MIMNoSuccessfulRun", "MIMGuardRefused", "MIMExtractionErrors"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s (alerts: %v)", want, alerts)
		}
	}
}

type supersetDataset struct {
	TableName    string `yaml:"table_name"`
	Schema       string `yaml:"schema"`
	SQL          string `yaml:"sql"`
	MainDttmCol  string `yaml:"main_dttm_col"`
	UUID         string `yaml:"uuid"`
	DatabaseUUID string `yaml:"database_uuid"`
	Version      string `yaml:"version"`
	Columns      []struct {
		Name string `yaml:"column_name"`
		Type string `yaml:"type"`
	} `yaml:"columns"`
	Metrics []struct {
		Name       string `yaml:"metric_name"`
		Expression string `yaml:"expression"`
	} `yaml:"metrics"`
}

func TestSupersetDatasetsRun(t *testing.T) {
	tx := warehouseTx(t)
	boot, err := fs.ReadFile(FS, "superset/bootstrap.sh")
	if err != nil {
		t.Fatal(err)
	}
	dbUUID := regexp.MustCompile(`(?m)^uuid: ([0-9a-f-]{36})$`).FindStringSubmatch(string(boot))
	if dbUUID == nil {
		t.Fatal("superset/bootstrap.sh defines no database uuid")
	}
	files, _ := fs.Glob(FS, "superset/datasets/*.yaml")
	if len(files) < 6 {
		t.Fatalf("%d Superset datasets", len(files))
	}
	uuids := map[string]string{}
	for _, f := range files {
		b, _ := fs.ReadFile(FS, f)
		var d supersetDataset
		if err := yaml.Unmarshal(b, &d); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if d.DatabaseUUID != dbUUID[1] || d.Version != "1.0.0" || d.UUID == "" || len(d.Columns) == 0 || len(d.Metrics) == 0 {
			t.Errorf("%s: database_uuid %s (bootstrap: %s), version %q, uuid %q, %d columns, %d metrics",
				f, d.DatabaseUUID, dbUUID[1], d.Version, d.UUID, len(d.Columns), len(d.Metrics))
		}
		if other, dup := uuids[d.UUID]; dup {
			t.Errorf("%s and %s share uuid %s", f, other, d.UUID)
		}
		uuids[d.UUID] = f
		source := pgx.Identifier{d.Schema, d.TableName}.Sanitize()
		if d.SQL != "" {
			source = "(" + d.SQL + ")"
		}
		var cols []string
		for _, c := range d.Columns {
			cols = append(cols, pgx.Identifier{c.Name}.Sanitize())
		}
		try(t, tx, f+": columns", fmt.Sprintf("SELECT %s FROM %s AS t LIMIT 1", strings.Join(cols, ", "), source))
		if d.MainDttmCol != "" && !slices.ContainsFunc(d.Columns, func(c struct {
			Name string `yaml:"column_name"`
			Type string `yaml:"type"`
		}) bool {
			return c.Name == d.MainDttmCol
		}) {
			t.Errorf("%s: main_dttm_col %s is not a column", f, d.MainDttmCol)
		}
		for _, m := range d.Metrics {
			try(t, tx, f+": metric "+m.Name, fmt.Sprintf("SELECT %s FROM %s AS t", m.Expression, source))
		}
		// Every column of a mart is listed, so Superset shows all of them.
		if d.SQL == "" {
			var n int
			if err := tx.QueryRow(context.Background(), `SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`,
				d.Schema, d.TableName).Scan(&n); err != nil || n != len(d.Columns) {
				t.Errorf("%s: lists %d columns, %s.%s has %d (%v)", f, len(d.Columns), d.Schema, d.TableName, n, err)
			}
		}
	}
}

func TestGrafanaProvisioning(t *testing.T) {
	sources := datasources(t)
	for _, uid := range []string{"mim-warehouse", "mim-prometheus"} {
		if _, ok := sources[uid]; !ok {
			t.Errorf("datasource %s is not provisioned", uid)
		}
	}
	b, err := fs.ReadFile(FS, "grafana/provisioning/dashboards/mim.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Providers []struct {
			Type    string            `yaml:"type"`
			Options map[string]string `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(b, &p); err != nil || len(p.Providers) != 1 || p.Providers[0].Type != "file" || p.Providers[0].Options["path"] == "" {
		t.Errorf("dashboard provider: %+v (%v)", p, err)
	}
	// The status page's charts and these dashboards must not reference
	// anything outside: no URL of a public host in the dashboards.
	for file := range dashboardsIn(t) {
		b, _ := fs.ReadFile(FS, file)
		if m := regexp.MustCompile(`https?://[a-z]`).Find(b); m != nil {
			t.Errorf("%s links outside: %s", file, m)
		}
	}
}

// TestPromtool has Prometheus's own tool check the scrape configuration and
// the rules, and run the rules' unit tests (prometheus/alerts_test.yml):
// each alert fires on the series mim serve exposes, labelled as written.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if pgtest.Required() {
			t.Fatalf("promtool is not installed (./scripts/setup installs Debian's prometheus package, which ships it): %v", err)
		}
		t.Skip("no promtool")
	}
	for _, args := range [][]string{
		{"check", "config", "prometheus.yml"},
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

type supersetChart struct {
	SliceName   string         `yaml:"slice_name"`
	VizType     string         `yaml:"viz_type"`
	Params      map[string]any `yaml:"params"`
	UUID        string         `yaml:"uuid"`
	Version     string         `yaml:"version"`
	DatasetUUID string         `yaml:"dataset_uuid"`
}

// TestSupersetDashboardOnTheDemo runs the demo for two nights, then every
// query of the Superset bundle against its warehouse: each dataset's
// columns and metrics, and each chart's query as Superset would build it
// (its x axis by day, its groups, its saved metrics). The dashboard places
// every chart, and every chart shows something of the demo.
func TestSupersetDashboardOnTheDemo(t *testing.T) {
	db := pgtest.NewEmpty(t)
	ctx := context.Background()
	e := &app.Env{Stdout: io.Discard, Stderr: io.Discard}
	if err := app.RunDemo(ctx, e, demo.Options{Scale: synth.Small, Nights: 2, Out: t.TempDir(), Seed: 1, DSN: db.DSN.Reveal()}); err != nil {
		t.Fatalf("the demo: %v", err)
	}
	datasets := map[string]supersetDataset{}
	files, _ := fs.Glob(FS, "superset/datasets/*.yaml")
	for _, f := range files {
		b, _ := fs.ReadFile(FS, f)
		var d supersetDataset
		if err := yaml.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		datasets[d.UUID] = d
	}
	source := func(d supersetDataset) string {
		if d.SQL != "" {
			return "(" + d.SQL + ")"
		}
		return pgx.Identifier{d.Schema, d.TableName}.Sanitize()
	}
	rowsOf := func(where, sql string) int {
		t.Helper()
		rows, err := db.Pool.Query(ctx, sql)
		if err != nil {
			t.Errorf("%s: %v\n%s", where, err, sql)
			return 0
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			t.Errorf("%s: %v\n%s", where, err, sql)
		}
		return n
	}
	for _, d := range datasets {
		var cols []string
		for _, c := range d.Columns {
			cols = append(cols, pgx.Identifier{c.Name}.Sanitize())
		}
		rowsOf(d.TableName+": columns", fmt.Sprintf("SELECT %s FROM %s AS t LIMIT 1", strings.Join(cols, ", "), source(d)))
		for _, m := range d.Metrics {
			rowsOf(d.TableName+": metric "+m.Name, fmt.Sprintf("SELECT %s FROM %s AS t", m.Expression, source(d)))
		}
	}

	// The synthetic sites carry no grades or completion, so the course
	// performance mart is empty on the demo: its query must run, and may
	// return nothing.
	mayBeEmpty := map[string]bool{"Course performance": true}
	charts := map[string]supersetChart{}
	files, _ = fs.Glob(FS, "superset/charts/*.yaml")
	if len(files) < 4 {
		t.Fatalf("%d charts", len(files))
	}
	for _, f := range files {
		b, _ := fs.ReadFile(FS, f)
		var c supersetChart
		if err := yaml.Unmarshal(b, &c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		charts[c.UUID] = c
		d, ok := datasets[c.DatasetUUID]
		if !ok || c.Version != "1.0.0" || c.UUID == "" || c.Params["viz_type"] != c.VizType {
			t.Errorf("%s: dataset %s found %v, version %q, uuid %q, viz %v/%s", f, c.DatasetUUID, ok, c.Version, c.UUID, c.Params["viz_type"], c.VizType)
			continue
		}
		column := func(name string) (string, bool) {
			for _, col := range d.Columns {
				if col.Name == name {
					return pgx.Identifier{name}.Sanitize(), true
				}
			}
			t.Errorf("%s: %q is not a column of %s", f, name, d.TableName)
			return "", false
		}
		var groups []string
		if x, ok := c.Params["x_axis"].(string); ok {
			if q, ok := column(x); ok {
				if d.MainDttmCol == x {
					q = "date_trunc('day', " + q + ")"
				}
				groups = append(groups, q)
			}
		}
		for _, g := range asStrings(c.Params["groupby"]) {
			if q, ok := column(g); ok {
				groups = append(groups, q)
			}
		}
		var metrics []string
		for _, m := range asStrings(c.Params["metrics"]) {
			i := slices.IndexFunc(d.Metrics, func(dm struct {
				Name       string `yaml:"metric_name"`
				Expression string `yaml:"expression"`
			}) bool {
				return dm.Name == m
			})
			if i < 0 {
				t.Errorf("%s: metric %q is not a saved metric of %s", f, m, d.TableName)
				continue
			}
			metrics = append(metrics, d.Metrics[i].Expression+" AS "+pgx.Identifier{m}.Sanitize())
		}
		if len(metrics) == 0 {
			t.Errorf("%s: no metric", f)
			continue
		}
		sql := fmt.Sprintf("SELECT %s FROM %s AS t", strings.Join(append(slices.Clone(groups), metrics...), ", "), source(d))
		if len(groups) > 0 {
			var by []string
			for i := range groups {
				by = append(by, fmt.Sprint(i+1))
			}
			sql += " GROUP BY " + strings.Join(by, ", ") + " ORDER BY " + strings.Join(by, ", ")
		}
		if n := rowsOf(f, sql+" LIMIT 10000"); n == 0 && !mayBeEmpty[c.SliceName] {
			t.Errorf("%s (%s) shows nothing of the demo:\n%s", f, c.SliceName, sql)
		}
	}

	// Drift over time has a point per night.
	if n := rowsOf("nights", `SELECT DISTINCT run_id FROM ctl.mart_count WHERE relation = 'mart.enrolment_drift'`); n != 2 {
		t.Errorf("drift counted for %d runs, want the demo's 2 nights", n)
	}

	// The dashboard places every chart, and only charts that exist.
	b, err := fs.ReadFile(FS, "superset/dashboards/mim.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title    string         `yaml:"dashboard_title"`
		UUID     string         `yaml:"uuid"`
		Version  string         `yaml:"version"`
		Position map[string]any `yaml:"position"`
	}
	if err := yaml.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	placed := map[string]bool{}
	for id, v := range dash.Position {
		item, _ := v.(map[string]any)
		if item["type"] != "CHART" {
			continue
		}
		meta, _ := item["meta"].(map[string]any)
		u, _ := meta["uuid"].(string)
		if _, ok := charts[u]; !ok {
			t.Errorf("the dashboard places %s (%v), which is not a chart of the bundle", id, u)
		}
		placed[u] = true
	}
	for u, c := range charts {
		if !placed[u] {
			t.Errorf("chart %q is not on the dashboard", c.SliceName)
		}
	}
	if dash.Title == "" || dash.UUID == "" || dash.Version != "1.0.0" {
		t.Errorf("dashboard: %+v", dash)
	}
}

func asStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}
