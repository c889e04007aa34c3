package guard

import (
	"fmt"
	"strings"
)

// RefusedError is a threshold refusal: nothing of the feed was written for
// the site.
type RefusedError struct {
	Guard    string
	Instance string
	Feed     string
	Limit    int
	Breaches []Measure
}

func (e *RefusedError) Error() string {
	parts := make([]string, len(e.Breaches))
	for i, m := range e.Breaches {
		parts[i] = m.String()
	}
	return fmt.Sprintf("%s guard: refusing the %s feed of site %s: %s, below threshold_percent %d%% of the last successful publish; nothing was written (set threshold_override to true to let one export through)",
		e.Guard, e.Feed, e.Instance, strings.Join(parts, ", "), e.Limit)
}

// ExitCode makes a refusal exit 3.
func (e *RefusedError) ExitCode() int { return 3 }

// Refusal returns the error for a refused check.
func Refusal(c Check, feed string) *RefusedError {
	return &RefusedError{Guard: c.Guard, Instance: c.Instance, Feed: feed, Limit: c.Limit, Breaches: c.Breaches()}
}
