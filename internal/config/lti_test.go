package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const ltiSites = `environment: production
moodle:
  - {name: main, url: "https://moodle.example.ac.uk/", token: t, environment: production}
  - {name: archive, url: "https://archive.example.ac.uk", token: t, environment: production}
  - {name: test, url: "https://moodle-test.example.ac.uk", token: t, environment: staging}
`

func TestLTIDefaultsToTheSitesOfThisEnvironment(t *testing.T) {
	cfg, err := Parse([]byte(ltiSites+"lti: {url: \"https://mim.example.ac.uk\", key_file: /etc/mim/lti-key.pem}\n"), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.LTI.Enabled() || !slices.Equal(cfg.LTI.Sites, []string{"main", "archive"}) || cfg.LTI.Session != 30*time.Minute {
		t.Errorf("lti = %+v", cfg.LTI)
	}
	if cfg.Moodle[0].Issuer() != "https://moodle.example.ac.uk" {
		t.Errorf("issuer %q", cfg.Moodle[0].Issuer())
	}
	off, err := Parse([]byte(ltiSites), envOf(nil))
	if err != nil || off.LTI.Enabled() || off.LTI.Sites != nil {
		t.Errorf("without lti.url the tool is on: %+v %v", off.LTI, err)
	}
}

func TestLTIChecked(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{`lti: {key_file: /k.pem}`, "lti.url"},
		{`lti: {url: "http://mim.example.ac.uk", key_file: /k.pem}`, "must be https"},
		{`lti: {url: "https://mim.example.ac.uk/?x=1", key_file: /k.pem}`, "without user, query or fragment"},
		{`lti: {url: "https://mim.example.ac.uk"}`, "lti.key_file"},
		{`lti: {url: "https://mim.example.ac.uk", key_file: /k.pem, session: 24h}`, "lti.session"},
		{`lti: {url: "https://mim.example.ac.uk", key_file: /k.pem, sites: [nosuch]}`, `"nosuch" is not a configured Moodle site`},
		{`lti: {url: "https://mim.example.ac.uk", key_file: /k.pem, sites: [test]}`, "staff of one environment never change another's mappings"},
		{`lti: {url: "https://mim.example.ac.uk", key_file: /k.pem, sites: [main, main]}`, "listed twice"},
	} {
		_, err := Parse([]byte(ltiSites+tc.yaml+"\n"), envOf(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.yaml, err, tc.want)
		}
	}
	if _, err := Parse([]byte(ltiSites+"lti: {url: \"http://127.0.0.1:9464\", key_file: /k.pem, sites: [main]}\n"), envOf(nil)); err != nil {
		t.Errorf("plain http on loopback (tests) was refused: %v", err)
	}
}
