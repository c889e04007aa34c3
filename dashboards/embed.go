package dashboards

import "embed"

// FS holds the definitions: grafana/ (dashboards and provisioning),
// prometheus/ (scrape configuration and alert rules) and superset/
// (datasets and the bootstrap that imports them).
//
//go:embed grafana prometheus superset
var FS embed.FS
