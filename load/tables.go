package load

// Tables names the tables the loader owns (the raw store), schema-qualified,
// for the checks that a migration created them.
func Tables() []string {
	return []string{"raw.record", "raw.record_history", "raw.scope_read"}
}
