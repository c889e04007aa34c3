package demo

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/synth"
)

// Site is one simulated Moodle site the demo configures.
type Site struct {
	Name, URL, Token string
	// DB, when set, is a PostgreSQL DSN of the site's tables: the site is
	// read from there (kind moodle-db).
	DB string
}

// Config is the configuration the demo runs with: the synthetic SITS and
// CMIS in the demo database, the simulated sites, feeds written to out.
// It goes through config.Parse like any file, so it is checked the same
// way; the DSN and the tokens come in as variables and are never part of
// the text.
func Config(dsn, out string, minYear int, sites []Site) (*config.Config, error) {
	text, secrets := ConfigText(dsn, out, minYear, sites)
	return parse(text, secrets)
}

// parse reads the demo's configuration text with its secrets.
func parse(text string, secrets map[string]string) (*config.Config, error) {
	return config.Parse([]byte(text), func(k string) (string, bool) { v, ok := secrets[k]; return v, ok })
}

// ConfigText is the demo's configuration as a file's text, and the values
// of the ${NAME}s it refers to (the DSN and each site's token); the first
// site also gets its target as OneRoster 1.2 CSV.
func ConfigText(dsn, out string, minYear int, sites []Site) (text string, secrets map[string]string) {
	ws := make([]synth.WorldSite, len(sites))
	for i, s := range sites {
		ws[i] = synth.WorldSite{Name: s.Name, URL: s.URL, Token: s.Token, DB: s.DB, OneRoster: i == 0}
	}
	return synth.ConfigText(synth.ConfigOptions{Environment: Environment, DSN: dsn, Out: out, MinYear: minYear, Sites: ws,
		VarPrefix: "MIM_DEMO"})
}

// Names of the files the demo writes its configuration to, in --out.
const (
	ConfigFile  = "mim.yaml"
	SecretsFile = "mim.secrets"
)

// writeConfig writes the demo's configuration into out, so that every
// other command can be tried on the demo's warehouse: mim.yaml, which reads
// the DSN and the tokens from mim.secrets beside it (owner only) unless the
// environment sets them.
func writeConfig(out, text string, secrets map[string]string) error {
	var sb strings.Builder
	sb.WriteString("# The demo warehouse's DSN and the simulated sites' tokens, for mim.yaml.\n")
	names := make([]string, 0, len(secrets))
	for k := range secrets {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&sb, "%s=%s\n", k, secrets[k])
	}
	head := "# Written by mim demo: the configuration the demo ran with. Try the other\n" +
		"# commands on the demo warehouse with --config " + filepath.Join(out, ConfigFile) + ".\n" +
		"# The simulated Moodle sites live only as long as the demo (mim demo --serve).\n" +
		"secrets_file: " + SecretsFile + "\n"
	for _, f := range []struct {
		name, body string
		mode       os.FileMode
	}{{SecretsFile, sb.String(), 0o600}, {ConfigFile, head + text, 0o644}} {
		if err := writeFileAtomic(filepath.Join(out, f.name), []byte(f.body), f.mode); err != nil {
			return fmt.Errorf("writing the demo's configuration: %w", err)
		}
	}
	return nil
}

// writeFileAtomic writes a whole file under a temporary name, then renames it.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// printNext prints the commands to try next on the demo's configuration.
func printNext(w io.Writer, out string, serving bool) {
	cfg := filepath.Join(out, ConfigFile)
	mim := "mim"
	if exe := os.Args[0]; strings.Contains(exe, "go-build") {
		mim = "go run ./cmd/mim"
	}
	fmt.Fprintf(w, "\nthe demo's configuration is %s (its DSN and tokens in %s beside it); try next:\n", cfg, SecretsFile)
	for _, c := range [][2]string{
		{"status", "the runs, by stage (--steps: every step)"},
		{"export --dry-run", "what the feeds would send now, and what the guards say"},
		{"settings list", "thresholds, overrides, academic year"},
		{"mappings list", "the course mappings"},
		{"serve --no-schedule --listen 127.0.0.1:0", "the status page and /metrics on this warehouse"},
	} {
		fmt.Fprintf(w, "  %s --config %s %-42s # %s\n", mim, cfg, c[0], c[1])
	}
	if serving {
		fmt.Fprintf(w, "  %s --config %s %-42s # %s\n", mim, cfg, "run", "another night, while the simulated sites are up")
	} else {
		fmt.Fprintln(w, "the simulated Moodle sites stopped with the demo: with `mim demo --serve` they stay up, and `mim run` works too")
	}
}

// CurrentAcademicYear is the start year of the academic year that t falls
// in, switching on 1 August as UK universities' years do (2026 for
// November 2026 and for March 2027).
func CurrentAcademicYear(t time.Time) int {
	if t.Month() >= time.August {
		return t.Year()
	}
	return t.Year() - 1
}
