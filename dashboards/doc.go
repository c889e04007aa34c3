// Package dashboards holds MIM's Grafana dashboards and provisioning, the
// Prometheus scrape configuration and alert rules, and the Superset datasets,
// charts and dashboard, embedded so tests can check every query against the
// warehouse.
package dashboards
