package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
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
		text = regexp.MustCompile(`(?i)(\b(?:password|pwd)\s*=\s*)('`+q+`'|"`+q+`"|`+q+`)(\s|$|[;&,)'"])`).ReplaceAllString(text, "${1}xxxxx${3}")
		text = regexp.MustCompile(`(://[^:/@\s]*:)`+q+`@`).ReplaceAllString(text, "${1}xxxxx@")
		text = regexp.MustCompile(`(\b[^/@\s:]+/)`+q+`@`).ReplaceAllString(text, "${1}xxxxx@")
	}
	return text
}

// secretsFileOf is the top-level secrets_file of a configuration, as
// written (it is read before anything is expanded); "" if none or if the
// file is not YAML (Parse reports that).
func secretsFileOf(data []byte) string {
	var top struct {
		SecretsFile string `yaml:"secrets_file"`
	}
	if yaml.Unmarshal(data, &top) != nil {
		return ""
	}
	return top.SecretsFile
}

var secretLine = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)

// readSecrets reads NAME=value lines (blank lines and # comments allowed; a
// value may be in single or double quotes). A file that group or others
// may read is refused: it holds passwords and tokens.
func readSecrets(path string) (map[string]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot be read: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s can be read by others (mode %04o): chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot be read: %w", err)
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := secretLine.FindStringSubmatch(line)
		if m == nil {
			// Never quote the line: it may hold a secret.
			return nil, fmt.Errorf("%s line %d is not NAME=value", path, i+1)
		}
		v := m[2]
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[m[1]] = v
	}
	return out, nil
}
