package envguard_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/internal/envguard"
	"github.com/mimwarehouse/mim/internal/pgtest"
	"github.com/mimwarehouse/mim/internal/secret"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/moodle"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

func siteConfig(name, url, env string) envguard.Site {
	return envguard.Site{Name: name, URL: url, Environment: env}
}

func client(t *testing.T, name, url string) *moodle.Client {
	t.Helper()
	c, err := moodle.New(name, url, moodletest.DefaultToken, moodle.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func refusal(t *testing.T, err error, want ...envguard.Check) *envguard.RefusedError {
	t.Helper()
	var re *envguard.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("want a refusal of %v, got %v", want, err)
	}
	if len(re.Failures) != len(want) {
		t.Fatalf("failures %v, want checks %v", re.Failures, want)
	}
	for _, c := range want {
		if !re.Failed(c) {
			t.Errorf("check (%d) %s did not fail: %v", c, c, re)
		}
		if !strings.Contains(re.Error(), c.String()) {
			t.Errorf("the message does not name %s: %v", c, re)
		}
	}
	if re.ExitCode() != 3 {
		t.Errorf("exit code %d", re.ExitCode())
	}
	return re
}

func TestFeedChecksSiteEnvironmentAndWarehouseLabel(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t) // labelled "test"
	site := siteConfig("main", "https://moodle.example.ac.uk", "test")

	p, err := envguard.New("test", db.Pool).Feed(ctx, site)
	if err != nil || p.Instance() != "main" || p.WebServices() || p.Environment() != "test" {
		t.Fatalf("a consistent deployment: %v %+v", err, p)
	}
	if p.Covers("main", site.URL) {
		t.Error("a feed permit must not cover web-service writes")
	}

	_, err = envguard.New("staging", db.Pool).Feed(ctx, siteConfig("main", site.URL, "production"))
	re := refusal(t, err, envguard.SiteEnvironment, envguard.WarehouseLabel)
	if !strings.Contains(re.Error(), `configured as environment "production" but this deployment is "staging"`) ||
		!strings.Contains(re.Error(), `belongs to environment "test"`) {
		t.Errorf("message: %v", re)
	}

	// A production backup restored into staging: only the label is wrong.
	if _, err := warehouse.Claim(ctx, db.Pool, "production", "restore"); err != nil {
		t.Fatal(err)
	}
	_, err = envguard.New("staging", db.Pool).Feed(ctx, siteConfig("main", site.URL, "staging"))
	re = refusal(t, err, envguard.WarehouseLabel)
	if !strings.Contains(re.Error(), "mim migrate --claim staging") {
		t.Errorf("the refusal should say how to claim: %v", re)
	}

	if _, err := db.Pool.Exec(ctx, `DELETE FROM ctl.deployment`); err != nil {
		t.Fatal(err)
	}
	_, err = envguard.New("staging", db.Pool).Feed(ctx, siteConfig("main", site.URL, "staging"))
	if re := refusal(t, err, envguard.WarehouseLabel); !strings.Contains(re.Error(), "no environment label") {
		t.Errorf("unlabelled: %v", re)
	}
}

func TestWebServicesChecksTheLiveSiteURL(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	sim := moodletest.NewServer(t, moodletest.State{})
	g := envguard.New("test", db.Pool)
	site := siteConfig("main", sim.URL(), "test")

	p, info, err := g.WebServices(ctx, site, client(t, "main", sim.URL()))
	if err != nil || !p.WebServices() || !p.Covers("main", sim.URL()+"/") || info == nil {
		t.Fatalf("consistent: %v %+v", err, p)
	}
	if p.Covers("other", sim.URL()) || p.Covers("main", "https://moodle.example.ac.uk") {
		t.Error("a permit covers only its own site")
	}

	// Another Moodle answers at the configured URL.
	sim.SetSiteURL("https://moodle.ucl.ac.uk")
	_, info, err = g.WebServices(ctx, site, client(t, "main", sim.URL()))
	re := refusal(t, err, envguard.LiveSiteURL)
	if re.LiveSiteURL != "https://moodle.ucl.ac.uk" || info == nil || !strings.Contains(re.Error(), "reports siteurl https://moodle.ucl.ac.uk") {
		t.Errorf("refusal: %v", re)
	}

	// All three at once: every failure is named.
	if _, err := warehouse.Claim(ctx, db.Pool, "production", "restore"); err != nil {
		t.Fatal(err)
	}
	_, _, err = envguard.New("staging", db.Pool).WebServices(ctx, siteConfig("main", sim.URL(), "production"), client(t, "main", sim.URL()))
	refusal(t, err, envguard.SiteEnvironment, envguard.WarehouseLabel, envguard.LiveSiteURL)
	if n := sim.Calls(""); n != 3 || sim.Calls("core_webservice_get_site_info") != n {
		t.Errorf("the guard may only read site info, once per check: %d calls", n)
	}

	// Recorded with every failure.
	run := int64(0)
	if err := envguard.Record(ctx, db.Pool, run, err); err != nil {
		t.Fatal(err)
	}
	if err := envguard.Record(ctx, db.Pool, run, errors.New("not a refusal")); err != nil {
		t.Fatal(err)
	}
	var n int
	var subject, live string
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) OVER (), subject, detail->>'live_siteurl' FROM ctl.guard_event
		WHERE guard = 'environment' AND decision = 'refused' AND instance = 'main' AND run_id IS NULL`).Scan(&n, &subject, &live); err != nil {
		t.Fatal(err)
	}
	if n != 1 || subject != "site environment, warehouse label, live siteurl" || live != "https://moodle.ucl.ac.uk" {
		t.Errorf("guard_event: %d %q %q", n, subject, live)
	}
}

func TestWebServicesWhenTheSiteCannotBeAsked(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	sim := moodletest.NewServer(t, moodletest.State{})
	url := sim.URL()
	sim.Close()

	// Nothing else wrong: an ordinary failure (exit 1), not a guard's refusal.
	_, _, err := envguard.New("test", db.Pool).WebServices(ctx, siteConfig("main", url, "test"), client(t, "main", url))
	var re *envguard.RefusedError
	if err == nil || errors.As(err, &re) || !strings.Contains(err.Error(), "nothing was written") {
		t.Errorf("unreachable site: %v", err)
	}
	// Something else wrong too: a refusal that says (3) could not be checked.
	_, _, err = envguard.New("test", db.Pool).WebServices(ctx, siteConfig("main", url, "production"), client(t, "main", url))
	re = refusal(t, err, envguard.SiteEnvironment, envguard.LiveSiteURL)
	if !strings.Contains(re.Error(), "could not be checked") {
		t.Errorf("message: %v", re)
	}
	// A client for another URL than the configured one is refused without a request.
	_, _, err = envguard.New("test", db.Pool).WebServices(ctx, siteConfig("main", "https://moodle.example.ac.uk", "test"), client(t, "main", url))
	refusal(t, err, envguard.LiveSiteURL)
}

// A configured URL that Moodle redirects to its wwwroot (localhost for a
// site at 127.0.0.1; HTTP 303 before any function runs) names another site
// root: check (3) fails, as when the site reports another siteurl, and the
// refusal names where Moodle lives.
func TestWebServicesRefusesARedirect(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	sim := moodletest.NewServer(t, moodletest.State{})
	url := strings.Replace(sim.URL(), "127.0.0.1", "localhost", 1)
	g := envguard.New("test", db.Pool)
	site := siteConfig("main", url, "test")
	_, _, err := g.WebServices(ctx, site, client(t, "main", url))
	re := refusal(t, err, envguard.LiveSiteURL)
	if re.LiveSiteURL != sim.URL() || !strings.Contains(re.Error(), "redirects to "+sim.URL()) {
		t.Errorf("refusal: %v (live %q)", re, re.LiveSiteURL)
	}
	if err := envguard.Record(ctx, db.Pool, 0, re); err != nil {
		t.Fatal(err)
	}
	// The same error from any read is the same refusal; other errors are not.
	_, rerr := client(t, "main", url).SiteInfo(ctx)
	if r := g.Redirected(site, rerr); r == nil || !r.Failed(envguard.LiveSiteURL) {
		t.Errorf("Redirected(%v) = %v", rerr, r)
	}
	if r := g.Redirected(site, errors.New("HTTP 500")); r != nil {
		t.Errorf("an ordinary error made a refusal: %v", r)
	}
}

// The incident the label alone cannot stop: a production configuration
// copied to a staging host together with a restored production warehouse.
// The environments all agree ("production" everywhere) and the siteurl is
// production's, so only the warehouse's identity tells the copy apart: it
// is refused until it is claimed.
func TestRestoredWarehouseMustBeClaimed(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewEmpty(t)
	if _, err := warehouse.Migrate(ctx, db.Pool, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := warehouse.EnsureDeployment(ctx, db.Pool, "production", "ops@prod"); err != nil {
		t.Fatal(err)
	}
	site := siteConfig("main", "https://moodle.example.ac.uk", "production")
	if _, err := envguard.New("production", db.Pool).Feed(ctx, site); err != nil {
		t.Fatalf("the production warehouse itself: %v", err)
	}
	// "Restore" it: a copy of the database, as CREATE DATABASE ... TEMPLATE
	// (or pg_dump into a new database, or a restore into another cluster)
	// makes one.
	copyDSN := copyDatabase(t, db)
	copyPool, err := warehouse.Open(ctx, copyDSN, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer copyPool.Close()
	d, err := warehouse.GetDeployment(ctx, copyPool)
	if err != nil || d == nil || d.Environment != "production" {
		t.Fatalf("the copy's label: %+v %v", d, err)
	}
	_, err = envguard.New("production", copyPool).Feed(ctx, site)
	re := refusal(t, err, envguard.WarehouseLabel)
	if !strings.Contains(re.Error(), "written in another warehouse") || !strings.Contains(re.Error(), "mim migrate --claim production") {
		t.Errorf("message: %v", re)
	}
	var mm *warehouse.MismatchError
	if err := warehouse.CheckDeployment(ctx, copyPool, "production"); !errors.As(err, &mm) || mm.Foreign == "" {
		t.Errorf("CheckDeployment on the copy: %v", err)
	}
	// Claimed deliberately, the copy is a warehouse of its own.
	if _, err := warehouse.Claim(ctx, copyPool, "production", "ops: this copy is production now"); err != nil {
		t.Fatal(err)
	}
	if _, err := envguard.New("production", copyPool).Feed(ctx, site); err != nil {
		t.Errorf("after the claim: %v", err)
	}
	if _, err := envguard.New("production", db.Pool).Feed(ctx, site); err != nil {
		t.Errorf("the original is untouched by the copy's claim: %v", err)
	}
}

// copyDatabase copies db's database into a new one (dropped with the test)
// and returns its DSN. db's connections are closed for the copy.
func copyDatabase(t *testing.T, db *pgtest.DB) secret.DSN {
	t.Helper()
	ctx := context.Background()
	admin, err := warehouse.Open(ctx, secret.DSN(pgtest.AdminDSN()), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	db.Pool.Reset() // PostgreSQL copies only a database nobody is connected to
	name := db.Name + "_copy"
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE `+db.Name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a, err := warehouse.Open(context.Background(), secret.DSN(pgtest.AdminDSN()), 1)
		if err == nil {
			_, _ = a.Exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
			a.Close()
		}
	})
	return secret.DSN(warehouse.WithDatabase(pgtest.AdminDSN(), name))
}
