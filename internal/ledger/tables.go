package ledger

// Tables names the tables the ledger owns (runs and their steps),
// schema-qualified, for the checks that a migration created them and that
// a dry run wrote nothing.
func Tables() []string {
	return []string{"ctl.run", "ctl.run_step"}
}
