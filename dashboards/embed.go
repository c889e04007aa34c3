package dashboards

import "embed"

// FS holds the definitions: grafana/ (dashboards and provisioning),
// prometheus/ (scrape configuration, alert rules and their unit tests) and
// superset/ (datasets, charts, the dashboard, and the bootstrap that imports
// them).
//
//go:embed grafana prometheus superset
var FS embed.FS
