package dashboards

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"

	"gopkg.in/yaml.v3"
)

// PromQuery is one PromQL expression of a Grafana panel or an alert rule.
type PromQuery struct {
	Where string // "grafana/dashboards/mim-operations.json: Stage duration", "prometheus/alerts.yml: MIMDown"
	Expr  string
}

// PromQueries lists every PromQL expression the Grafana dashboards and the
// alert rules hold, so tests can check each against what mim serve exposes.
func PromQueries() ([]PromQuery, error) {
	var out []PromQuery
	files, err := fs.Glob(FS, "grafana/dashboards/*.json")
	if err != nil {
		return nil, err
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var walk func(file string, raw []json.RawMessage) error
	walk = func(file string, raw []json.RawMessage) error {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			for _, t := range p.Targets {
				if t.Expr != "" {
					out = append(out, PromQuery{Where: file + ": " + p.Title, Expr: t.Expr})
				}
			}
			if err := walk(file, p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	for _, f := range files {
		b, err := fs.ReadFile(FS, f)
		if err != nil {
			return nil, err
		}
		var d struct {
			Panels []json.RawMessage `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if err := walk(f, d.Panels); err != nil {
			return nil, err
		}
	}
	b, err := fs.ReadFile(FS, "prometheus/prometheus.yml")
	if err != nil {
		return nil, err
	}
	var cfg struct {
		RuleFiles []string `yaml:"rule_files"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("prometheus/prometheus.yml: %w", err)
	}
	for _, rf := range cfg.RuleFiles {
		name := path.Join("prometheus", rf)
		b, err := fs.ReadFile(FS, name)
		if err != nil {
			return nil, err
		}
		var rules struct {
			Groups []struct {
				Rules []struct {
					Alert string `yaml:"alert"`
					Expr  string `yaml:"expr"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(b, &rules); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				out = append(out, PromQuery{Where: name + ": " + r.Alert, Expr: r.Expr})
			}
		}
	}
	return out, nil
}
