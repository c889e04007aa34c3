// Package secret holds the credential types of MIM's configuration: a
// Secret (a token, a password) and a DSN (a connection string that may carry
// a password). Both print redacted through fmt, slog and encoding, so an
// options struct holding one can be logged or shown in an error without
// leaking it; Reveal hands the value to a driver. It is a leaf package, so a
// stage's own options can carry a credential without importing the whole
// configuration.
package secret

import (
	"log/slog"
	"net/url"
	"regexp"
	"slices"
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

// mysqlAddr starts the part of a go-sql-driver DSN after the credentials:
// a protocol with its address, or straight the database name.
var mysqlAddr = regexp.MustCompile(`^(?:[a-z0-9]+\([^)]*\))?/`)

// redactMySQL hides the password of a go-sql-driver/mysql DSN
// ("user:password@tcp(host:3306)/moodle"), splitting it as the driver does:
// the credentials end at the last "@" before the last "/".
func redactMySQL(s string) (string, bool) {
	creds, ok := mysqlCredentials(s)
	if !ok {
		return "", false
	}
	user, _, hasPassword := strings.Cut(creds, ":")
	if !hasPassword {
		return s, true
	}
	return user + ":xxxxx" + s[len(creds):], true
}

// mysqlCredentials is the "user:password" part of a go-sql-driver DSN.
func mysqlCredentials(s string) (string, bool) {
	slash := strings.LastIndex(s, "/")
	if slash < 0 {
		return "", false
	}
	at := strings.LastIndex(s[:slash], "@")
	if at < 0 || !mysqlAddr.MatchString(s[at+1:]) {
		return "", false
	}
	return s[:at], true
}

// Password returns the password the DSN carries ("" when none), in any of
// the forms RedactDSN knows, so a driver's error text can be scrubbed of it.
func (d DSN) Password() string {
	s := string(d)
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return ""
		}
		if p, ok := u.User.Password(); ok {
			return p
		}
		for k, v := range u.Query() {
			if strings.EqualFold(k, "password") && len(v) > 0 {
				return v[0]
			}
		}
		return ""
	}
	if m := oracleEasyAuth.FindStringSubmatch(s); m != nil {
		return m[2]
	}
	if creds, ok := mysqlCredentials(s); ok {
		_, pw, _ := strings.Cut(creds, ":")
		return pw
	}
	if sp, ok := findKVPassword(s); ok {
		return sp.value
	}
	return ""
}

var oracleEasyAuth = regexp.MustCompile(`^([^/@\s]+)/([^@\s]+)@(.+)$`)

// RedactDSN hides the password in a URL ("postgres://u:p@h/db",
// "sqlserver://u:p@h?database=x"), a key=value DSN ("password=p": libpq,
// godror's logfmt form), a SQL Server ADO or ODBC string
// ("server=h;user id=u;password=p", "pwd={p;w}"), an Oracle easy-connect
// string ("u/p@host") or a go-sql-driver/mysql DSN ("u:p@tcp(h)/db").
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
	for off := 0; ; {
		sp, ok := findKVPassword(s[off:])
		if !ok {
			return s
		}
		s = s[:off+sp.start] + "xxxxx" + s[off+sp.end:]
		off += sp.start + len("xxxxx")
	}
}

// kvSpan is where a key=value DSN holds its password, and the password.
type kvSpan struct {
	start, end int // the value as written, quotes included
	value      string
}

// passwordKey is a password key at the start or after a separator.
var passwordKey = regexp.MustCompile(`(?i)(?:^|[\s;])(?:password|pwd)\s*=\s*`)

// nextPair is the start of a libpq pair after whitespace ("  host=").
var nextPair = regexp.MustCompile(`^\s+[A-Za-z_][A-Za-z0-9_]*\s*=`)

// findKVPassword scans key=value DSNs of every dialect MIM meets: libpq and
// logfmt (pairs separated by spaces, values quoted with ' or " and \
// escapes), ADO (pairs separated by ";", values quoted with ' or " doubled
// to escape) and ODBC (braced values, "}}" for "}"). An unquoted value ends
// at ";", at the end, or at whitespace followed by the next key=.
func findKVPassword(s string) (kvSpan, bool) {
	loc := passwordKey.FindStringIndex(s)
	if loc == nil {
		return kvSpan{}, false
	}
	i := loc[1]
	if i >= len(s) {
		return kvSpan{start: i, end: i}, true
	}
	var b strings.Builder
	switch q := s[i]; q {
	case '\'', '"', '{':
		closing := q
		if q == '{' {
			closing = '}'
		}
		j := i + 1
		for j < len(s) {
			c := s[j]
			switch {
			case c == '\\' && q != '{' && j+1 < len(s):
				b.WriteByte(s[j+1])
				j += 2
				continue
			case c == closing && j+1 < len(s) && s[j+1] == closing:
				b.WriteByte(c)
				j += 2
				continue
			case c == closing:
				return kvSpan{start: i, end: j + 1, value: b.String()}, true
			}
			b.WriteByte(c)
			j++
		}
		// Unterminated: everything after the quote is the secret.
		return kvSpan{start: i, end: len(s), value: s[i+1:]}, true
	}
	j := i
	for j < len(s) && s[j] != ';' {
		if s[j] == ' ' || s[j] == '\t' || s[j] == '\n' {
			if nextPair.MatchString(s[j:]) {
				break
			}
		}
		j++
	}
	return kvSpan{start: i, end: j, value: strings.TrimSpace(s[i:j])}, true
}

// ScrubPassword hides password where text holds it as a password: after
// "password=" or "pwd=" (quoted or not), as a URL's user:password@ or an
// Oracle user/password@host, also URL-escaped. Only the field is
// redacted, never the same letters elsewhere: with password "mim" the user
// mim and the database mim_demo stay readable. Drivers quote connection
// strings in their errors; this is for those errors.
func ScrubPassword(text, password string) string {
	if password == "" {
		return text
	}
	forms := []string{password}
	for _, esc := range []string{url.QueryEscape(password), url.PathEscape(password), url.UserPassword("", password).String()[1:]} {
		if esc != password && !slices.Contains(forms, esc) {
			forms = append(forms, esc)
		}
	}
	for _, p := range forms {
		q := regexp.QuoteMeta(p)
		braced := regexp.QuoteMeta("{" + strings.ReplaceAll(p, "}", "}}") + "}")
		text = regexp.MustCompile(`(?i)(\b(?:password|pwd)\s*=\s*)('`+q+`'|"`+q+`"|`+braced+`|`+q+`)(\s|$|[;&,)'"])`).ReplaceAllString(text, "${1}xxxxx${3}")
		text = regexp.MustCompile(`(://[^:/@\s]*:)`+q+`@`).ReplaceAllString(text, "${1}xxxxx@")
		text = regexp.MustCompile(`(\b[^/@\s:]+/)`+q+`@`).ReplaceAllString(text, "${1}xxxxx@")
	}
	return text
}
