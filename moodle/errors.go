package moodle

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind classifies a Moodle exception by what the caller can do about it.
type Kind int

const (
	// Other is any exception not classified below (idnumbertaken,
	// shortnametaken, nocriteriaset, a PHP TypeError, ...).
	Other Kind = iota
	// InvalidToken: the token is wrong or missing; nothing will work.
	InvalidToken
	// AccessException: the token's service lacks the function, or the
	// service is restricted (IP, user, time).
	AccessException
	// FunctionMissing: the function does not exist on this Moodle
	// (invalidrecord on table external_functions).
	FunctionMissing
	// RecordMissing: a record the call names does not exist (invalidrecord
	// on a group, course or user).
	RecordMissing
	// InvalidParameter: Moodle rejected a parameter; the debug info, when
	// the site shows it, says which and why ("Only enrolled users may be
	// members of groups", "Unexpected keys (foo) ...").
	InvalidParameter
	// NoPermissions: the web-service user lacks a capability.
	NoPermissions
	// ContextNotValid: the web-service user cannot reach the course or
	// category (errorcoursecontextnotvalid), or it does not exist.
	ContextNotValid
)

var kindNames = [...]string{"other", "invalid_token", "access_exception", "function_missing", "record_missing",
	"invalid_parameter", "no_permissions", "context_not_valid"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is an exception Moodle answered with (always HTTP 200).
type Error struct {
	Function  string
	Exception string // the PHP class, e.g. core\exception\invalid_parameter_exception
	ErrorCode string // empty for PHP errors (TypeError)
	Message   string
	DebugInfo string // present only when the site's debugging is on
	Kind      Kind
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Function)
	b.WriteString(": ")
	if e.ErrorCode != "" {
		b.WriteString(e.ErrorCode)
	} else {
		b.WriteString(e.Exception)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	if e.DebugInfo != "" {
		b.WriteString(" (")
		b.WriteString(firstLine(e.DebugInfo))
		b.WriteString(")")
	}
	return b.String()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// fatal reports whether an exception would fail every item of a batch
// alike, so that splitting the batch cannot isolate a bad item.
func (k Kind) fatal() bool {
	return k == InvalidToken || k == AccessException || k == FunctionMissing
}

func classify(errorcode, message string) Kind {
	switch errorcode {
	case "invalidtoken":
		return InvalidToken
	case "accessexception":
		return AccessException
	case "invalidrecord":
		if strings.Contains(message, "external_functions") {
			return FunctionMissing
		}
		return RecordMissing
	case "invalidparameter", "invalidfieldparameter":
		return InvalidParameter
	case "nopermissions", "nopermissiontoviewgrades":
		return NoPermissions
	case "errorcoursecontextnotvalid", "errorcatcontextnotvalid":
		return ContextNotValid
	}
	return Other
}

// TransientError is a failure that may pass if the request is repeated:
// a 5xx status, a proxy's HTML page, throttling (429), a timeout, a broken
// connection, or a body that is not (complete) JSON. Reads are retried on
// it; a write that is not idempotent is not, and its outcome is unknown:
// read Moodle back before trying it again.
type TransientError struct {
	Function   string
	Status     int    // HTTP status; 0 when there was no response
	Reason     string // what went wrong, e.g. "HTTP 502 (HTML page)", "timeout"
	RetryAfter time.Duration
	Err        error // the underlying error, if any
	msg        string
}

func (e *TransientError) Error() string { return e.msg }
func (e *TransientError) Unwrap() error { return e.Err }

// Throttled reports whether the site or a proxy in front of it asked the
// client to slow down.
func (e *TransientError) Throttled() bool { return e.Status == 429 }

// StatusError is an HTTP answer that is neither Moodle's nor transient: a
// redirect (the configured URL is not where Moodle answers) or a 4xx.
type StatusError struct {
	Function string
	Status   int
	Location string // for redirects
	msg      string
}

func (e *StatusError) Error() string { return e.msg }

// Redirected returns the site root a redirect sends the client to (the
// Location without Moodle's endpoint and query), and false when err holds
// no redirect. Moodle redirects every request for another host or port than
// its wwwroot to the wwwroot, before any function runs: the configured URL
// then names another site root than the one Moodle answers at.
func Redirected(err error) (root string, ok bool) {
	var se *StatusError
	if !errors.As(err, &se) || se.Status < 300 || se.Status >= 400 || se.Location == "" {
		return "", false
	}
	root, _, _ = strings.Cut(se.Location, "?")
	root = strings.TrimSuffix(root, Endpoint)
	return strings.TrimRight(root, "/"), true
}

// BatchError says that some items of a batch write failed; the batch's
// result tells which and why. It unwraps to the first item's error.
type BatchError struct {
	Function      string
	Failed, Total int
	First         error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("%s: %d of %d items failed; first: %v", e.Function, e.Failed, e.Total, e.First)
}

func (e *BatchError) Unwrap() error { return e.First }

// ErrNotAttempted marks batch items that were not sent because an earlier
// request failed in a way that would fail them too (a bad token, a
// missing function, Moodle unreachable). It wraps that cause.
var ErrNotAttempted = errors.New("not attempted")

// SiteError says a site is not the one configured, or cannot do what MIM
// needs: its live siteurl differs from the configured URL, or its token's
// service lacks functions.
type SiteError struct {
	Configured string
	Live       string
	Missing    []string
}

func (e *SiteError) Error() string {
	var parts []string
	if e.Live != "" && !SameSite(e.Configured, e.Live) {
		parts = append(parts, fmt.Sprintf("siteurl is %s, not the configured %s", e.Live, e.Configured))
	}
	if len(e.Missing) > 0 {
		parts = append(parts, "the token's service lacks "+strings.Join(e.Missing, ", "))
	}
	return "moodle site check: " + strings.Join(parts, "; ")
}

// IsTransient reports whether err (or an error it wraps) is a
// TransientError.
func IsTransient(err error) bool {
	var te *TransientError
	return errors.As(err, &te)
}

// KindOf returns the kind of the Moodle exception err wraps, and false if
// it wraps none.
func KindOf(err error) (Kind, bool) {
	var me *Error
	if errors.As(err, &me) {
		return me.Kind, true
	}
	return Other, false
}
