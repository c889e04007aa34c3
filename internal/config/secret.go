package config

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mimwarehouse/mim/internal/secret"
)

// Secret holds a credential; it prints redacted (see package secret).
type Secret = secret.Secret

// DSN is a connection string that may carry a password; it prints redacted
// (see package secret).
type DSN = secret.DSN

// RedactDSN hides the password of a connection string (see secret.RedactDSN).
func RedactDSN(s string) string { return secret.RedactDSN(s) }

// ScrubPassword hides password where text holds it as a password (see
// secret.ScrubPassword).
func ScrubPassword(text, password string) string { return secret.ScrubPassword(text, password) }

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
