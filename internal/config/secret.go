package config

import (
	"log/slog"
	"net/url"
	"regexp"
	"strings"
)

// Secret holds a credential (a token, a DSN with a password). It prints as
// "[redacted]" through fmt, slog and encoding, so a configuration can be logged
// or shown in an error without leaking what it protects. Use Reveal only at
// the point where the value is handed to a driver or an HTTP request.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret value itself.
func (s Secret) Reveal() string { return string(s) }

// IsZero reports whether no secret was configured.
func (s Secret) IsZero() bool { return s == "" }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return s.String() }

// LogValue keeps slog from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps encoders (JSON, YAML) from writing the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// DSN is a data source name that may carry a password. It prints with the
// password replaced, so the host and database stay visible in logs and errors.
type DSN string

// Reveal returns the DSN as given, password included.
func (d DSN) Reveal() string { return string(d) }

func (d DSN) String() string { return RedactDSN(string(d)) }

// GoString keeps %#v from printing the password.
func (d DSN) GoString() string { return d.String() }

// LogValue keeps slog from printing the password.
func (d DSN) LogValue() slog.Value { return slog.StringValue(d.String()) }

// MarshalText keeps encoders from writing the password.
func (d DSN) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

var (
	kvPassword     = regexp.MustCompile(`(?i)\b(password|pwd)\s*=\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s]*)`)
	oracleEasyAuth = regexp.MustCompile(`^([^/@\s]+)/([^@\s]+)@(.+)$`)
)

// mysqlAddr starts the part of a go-sql-driver DSN after the credentials:
// a protocol with its address, or straight the database name.
var mysqlAddr = regexp.MustCompile(`^(?:[a-z0-9]+\([^)]*\))?/`)

// redactMySQL hides the password of a go-sql-driver/mysql DSN
// ("user:password@tcp(host:3306)/moodle"), splitting it as the driver does:
// the credentials end at the last "@" before the last "/".
func redactMySQL(s string) (string, bool) {
	slash := strings.LastIndex(s, "/")
	if slash < 0 {
		return "", false
	}
	at := strings.LastIndex(s[:slash], "@")
	if at < 0 || !mysqlAddr.MatchString(s[at+1:]) {
		return "", false
	}
	user, _, hasPassword := strings.Cut(s[:at], ":")
	if !hasPassword {
		return s, true
	}
	return user + ":xxxxx" + s[at:], true
}

// RedactDSN hides the password in a PostgreSQL URL ("postgres://u:p@h/db"), a
// key=value DSN ("password=p") or an Oracle easy-connect string ("u/p@host").
func RedactDSN(s string) string {
	if s == "" {
		return ""
	}
	if strings.Contains(s, "://") {
		if u, err := url.Parse(s); err == nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			}
			q := u.Query()
			changed := false
			for k := range q {
				if strings.EqualFold(k, "password") {
					q.Set(k, "xxxxx")
					changed = true
				}
			}
			if changed {
				u.RawQuery = q.Encode()
			}
			return u.String()
		}
		// Unparseable URL: keep only the scheme so nothing secret can leak.
		return s[:strings.Index(s, "://")+3] + redacted
	}
	if m := oracleEasyAuth.FindStringSubmatch(s); m != nil {
		return m[1] + "/xxxxx@" + m[3]
	}
	if r, ok := redactMySQL(s); ok {
		return r
	}
	return kvPassword.ReplaceAllString(s, "${1}=xxxxx")
}
