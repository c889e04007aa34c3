package feeds

import (
	"fmt"
	"strings"
)

// UnknownSiteError names a site the configuration does not have.
type UnknownSiteError struct {
	Name  string
	Known []string
}

func (e *UnknownSiteError) Error() string {
	return fmt.Sprintf("site %q is not in the configuration (sites: %s)", e.Name, strings.Join(e.Known, ", "))
}

// ExitCode makes an unknown site a usage error.
func (e *UnknownSiteError) ExitCode() int { return 2 }

// Error says which feeds an export did not send. The others went out.
type Error struct {
	Refused []*Result
	Failed  []*Result
}

func (e *Error) Error() string {
	var parts []string
	for _, r := range e.Failed {
		parts = append(parts, fmt.Sprintf("%s/%s failed: %v", r.Instance, r.Feed, r.Err))
	}
	for _, r := range e.Refused {
		parts = append(parts, fmt.Sprintf("%s/%s refused: %v", r.Instance, r.Feed, r.Err))
	}
	return "export: " + strings.Join(parts, "; ")
}

// ExitCode is 3 when a guard refused a feed (a person must decide, as for
// group sync a refusal outranks a failure), else 1.
func (e *Error) ExitCode() int {
	if len(e.Refused) > 0 {
		return 3
	}
	return 1
}

// Unwrap gives the refusals and failures to errors.As.
func (e *Error) Unwrap() []error {
	var out []error
	for _, r := range e.Failed {
		out = append(out, r.Err)
	}
	for _, r := range e.Refused {
		out = append(out, r.Err)
	}
	return out
}
