package config

import (
	"fmt"
	"regexp"
	"strings"
)

var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces ${VAR} and ${VAR:-default} in one scalar value from env.
// ${VAR} with VAR unset is an error (a missing secret must not become an
// empty token); ${VAR:-default} uses default when VAR is unset or empty, as
// the shell does. "$$" stands for a literal "$". Expansion happens per
// value after YAML parsing, so an environment value can never change the
// structure of the file.
func expand(s string, env func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' {
			b.WriteByte(c)
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			b.WriteByte('$')
			i++
			continue
		}
		if i+1 >= len(s) || s[i+1] != '{' {
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in value (write $$ for a literal $)")
		}
		expr := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !varName.MatchString(name) {
			return "", fmt.Errorf("invalid variable reference ${%s} (expected ${NAME} or ${NAME:-default})", expr)
		}
		val, ok := env(name)
		switch {
		case hasDef && (!ok || val == ""):
			val = def
		case !ok:
			return "", fmt.Errorf("environment variable %s is not set (set it, or give a default with ${%s:-value})", name, name)
		}
		b.WriteString(val)
		i += end
	}
	return b.String(), nil
}
