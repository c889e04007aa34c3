package envguard

import (
	"fmt"
	"strings"
)

// RefusedError is the guard's refusal: nothing may be written to the site.
type RefusedError struct {
	Instance        string
	URL             string // configured
	SiteEnvironment string // the site's configured environment
	Deployment      string // the configuration's environment
	LiveSiteURL     string // as the site reported it; "" when not asked
	Failures        []Failure
}

func (e *RefusedError) Error() string {
	parts := make([]string, len(e.Failures))
	for i, f := range e.Failures {
		parts[i] = fmt.Sprintf("(%d) %s: %s", int(f.Check), f.Check, f.Detail)
	}
	return fmt.Sprintf("environment guard: refusing to write to Moodle site %s: %s", e.Instance, strings.Join(parts, "; "))
}

// ExitCode makes a refusal exit 3.
func (e *RefusedError) ExitCode() int { return 3 }

// Failed reports whether check c failed.
func (e *RefusedError) Failed(c Check) bool {
	for _, f := range e.Failures {
		if f.Check == c {
			return true
		}
	}
	return false
}
