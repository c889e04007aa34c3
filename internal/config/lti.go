package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// LTI configures the LTI 1.3 tool `mim serve` offers course staff: from
// inside Moodle, the staff of a course see and change which SIS entities
// feed it. The tool is off unless URL is set.
type LTI struct {
	// URL is MIM's public address as browsers and Moodle reach `mim serve`
	// (https://mim.example.ac.uk, or with a path behind a proxy); the tool's
	// endpoints are under URL/lti/.
	URL string `yaml:"url"`
	// KeyFile is the tool's RSA private key in PEM (`mim lti keygen`
	// writes one); its public half is served at URL/lti/jwks.
	KeyFile string `yaml:"key_file"`
	// Sites are the Moodle sites (moodle[].name) that may register the tool
	// and launch it; default: every configured site of this environment. A
	// site's issuer is its url.
	Sites []string `yaml:"sites"`
	// Session is how long the session a launch opens lasts (default 30m).
	Session time.Duration `yaml:"session"`
}

// Enabled reports whether the tool is configured.
func (l LTI) Enabled() bool { return l.URL != "" }

func (l *LTI) applyDefaults(c *Config) {
	if !l.Enabled() {
		return
	}
	if l.Session == 0 {
		l.Session = 30 * time.Minute
	}
	if len(l.Sites) == 0 {
		for _, m := range c.Moodle {
			if m.Environment == c.Environment {
				l.Sites = append(l.Sites, m.Name)
			}
		}
	}
}

func (l *LTI) validate(c *Config, ps *problems) {
	if !l.Enabled() {
		if l.KeyFile != "" || len(l.Sites) > 0 || l.Session != 0 {
			ps.add("lti.url", 0, "required when any other lti key is set: MIM's public address, e.g. https://mim.example.ac.uk")
		}
		return
	}
	u, err := url.Parse(l.URL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		ps.add("lti.url", 0, "%q is not an http(s) URL", l.URL)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		ps.add("lti.url", 0, "must be https: Moodle posts signed launches to it and browsers keep its cookies only over https (plain http is accepted on loopback, for tests)")
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		ps.add("lti.url", 0, "must be a plain address without user, query or fragment")
	}
	if l.KeyFile == "" {
		ps.add("lti.key_file", 0, "required: the tool's RSA private key in PEM (mim lti keygen --out FILE writes one)")
	}
	if l.Session < 5*time.Minute || l.Session > 8*time.Hour {
		ps.add("lti.session", 0, "must be between 5m and 8h (a session is meant to be short)")
	}
	if len(l.Sites) == 0 {
		ps.add("lti.sites", 0, "no Moodle site of environment %q is configured to launch the tool: list them here", c.Environment)
	}
	seen := map[string]bool{}
	for i, name := range l.Sites {
		path := fmt.Sprintf("lti.sites[%d]", i)
		j := slices.IndexFunc(c.Moodle, func(m MoodleSite) bool { return m.Name == name })
		switch {
		case seen[name]:
			ps.add(path, 0, "%q is listed twice", name)
		case j < 0:
			ps.add(path, 0, "%q is not a configured Moodle site (moodle[].name)", name)
		case c.Moodle[j].Environment != c.Environment:
			ps.add(path, 0, "site %q belongs to environment %q, this deployment to %q: staff of one environment never change another's mappings",
				name, c.Moodle[j].Environment, c.Environment)
		}
		seen[name] = true
	}
}

// Issuer is the LTI issuer of a Moodle site: its wwwroot, which is the
// configured url without a trailing slash.
func (m MoodleSite) Issuer() string { return strings.TrimRight(m.URL, "/") }
