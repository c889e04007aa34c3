package app_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/pgtest"
)

// mim lti: a key written once, a registration made by hand in Moodle
// recorded with Moodle's endpoints, listed, revoked; staff changes listed.
func TestLTICommands(t *testing.T) {
	db := pgtest.New(t)
	key := filepath.Join(t.TempDir(), "lti-key.pem")
	cfg := writeConfig(t, `environment: test
warehouse: {dsn: "`+db.DSN.Reveal()+`"}
moodle:
  - {name: main, url: "http://127.0.0.1:9/moodle/", token: t, environment: test}
  - {name: other, url: "http://127.0.0.1:9/other", token: t, environment: production}
lti: {url: "https://mim.example.ac.uk", key_file: "`+key+`", sites: [main]}
`)
	if code, out, errOut := mim(t, "lti", "keygen", "--out", key); code != 0 || !strings.Contains(out, "wrote the LTI tool's key") {
		t.Fatalf("keygen: %d %s%s", code, out, errOut)
	}
	if code, _, errOut := mim(t, "lti", "keygen", "--out", key); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("keygen over an existing key: %d %s", code, errOut)
	}
	if code, _, errOut := mim(t, "--config", cfg, "lti", "register", "--instance", "other", "--client-id", "c", "--deployment-id", "1"); code != 2 ||
		!strings.Contains(errOut, "not in lti.sites") {
		t.Errorf("registering a site outside lti.sites: %d %s", code, errOut)
	}
	code, out, errOut := mim(t, "--config", cfg, "lti", "register", "--instance", "main", "--client-id", "AbC123", "--deployment-id", "4, 7")
	if code != 0 || !strings.Contains(out, "client AbC123, deployments 4, 7") {
		t.Fatalf("register: %d %s%s", code, out, errOut)
	}
	if got := scalar(t, db.Pool, `SELECT issuer || ' ' || auth_url || ' ' || jwks_url FROM ctl.lti_platform`); got !=
		"http://127.0.0.1:9/moodle http://127.0.0.1:9/moodle/mod/lti/auth.php http://127.0.0.1:9/moodle/mod/lti/certs.php" {
		t.Errorf("registration %s", got)
	}
	code, out, _ = mim(t, "--config", cfg, "lti", "platforms")
	if code != 0 || !strings.Contains(out, "AbC123") || !strings.Contains(out, "4,7") || !strings.Contains(out, "true") {
		t.Errorf("platforms: %d\n%s", code, out)
	}
	id := scalar(t, db.Pool, `SELECT platform_id::text FROM ctl.lti_platform`)
	if code, out, errOut := mim(t, "--config", cfg, "lti", "revoke", "--id", id); code != 0 || !strings.Contains(out, "revoked") {
		t.Errorf("revoke: %d %s%s", code, out, errOut)
	}
	if got := scalar(t, db.Pool, `SELECT active::text FROM ctl.lti_platform`); got != "false" {
		t.Errorf("after revoking, active = %s", got)
	}
	if code, out, errOut := mim(t, "--config", cfg, "lti", "changes"); code != 0 || !strings.Contains(out, "STATUS") {
		t.Errorf("changes: %d %s%s", code, out, errOut)
	}
	// mim check (nothing listens on the sites' port): the key loads; main is
	// registered no more (revoked).
	_, out, _ = mim(t, "--config", cfg, "check")
	if !regexp.MustCompile(`ok +lti key +\S+lti-key.pem: RSA 3072 bits`).MatchString(out) ||
		!regexp.MustCompile(`FAIL +lti:main +not registered`).MatchString(out) {
		t.Errorf("check:\n%s", out)
	}
	if code, _, _ := mim(t, "--config", cfg, "lti", "nonsense"); code != 2 {
		t.Errorf("an unknown action: %d", code)
	}
}
