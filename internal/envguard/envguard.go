// Package envguard is the environment guard in front of every write MIM
// makes to a Moodle site, so that a staging MIM can never write to
// production again (seed 001: a staging copy deleted 2,085 groups there).
// A writer asks the guard for a Permit first; it gets one only when (1) the
// site's configured environment is this deployment's, (2) the warehouse's
// ctl.deployment says the same and was written in this very warehouse (its
// cluster's system identifier and the database's OID: a restored or copied
// warehouse must be claimed), and, for web-service writes, (3) the live
// siteurl the site reports is the configured URL. A refusal names every
// check that failed and is recorded in ctl.guard_event.
package envguard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/moodle"
)

// Name is the guard's name in ctl.guard_event and metrics.
const Name = "environment"

// Check is one of the guard's three conditions.
type Check int

// The three checks, numbered as docs/architecture.md "Guards" numbers them.
const (
	// SiteEnvironment: the site's configured environment is the deployment's.
	SiteEnvironment Check = 1
	// WarehouseLabel: ctl.deployment names the deployment's environment.
	WarehouseLabel Check = 2
	// LiveSiteURL: the siteurl the site reports is the configured URL.
	LiveSiteURL Check = 3
)

func (c Check) String() string {
	switch c {
	case SiteEnvironment:
		return "site environment"
	case WarehouseLabel:
		return "warehouse label"
	case LiveSiteURL:
		return "live siteurl"
	}
	return fmt.Sprintf("check %d", int(c))
}

// Failure is one failed check and what the guard saw.
type Failure struct {
	Check  Check
	Detail string
}

// Site is what the guard knows of a Moodle site: its name, the URL it is
// configured at and the environment it is configured as (moodle[].name,
// url and environment).
type Site struct {
	Name        string
	URL         string
	Environment string
}

// Guard is one deployment's environment guard.
type Guard struct {
	// Environment is the deployment's configured environment (environment:).
	Environment string
	// Warehouse is where ctl.deployment is read; a pool or a transaction.
	Warehouse warehouse.Querier
}

// New returns the guard of the deployment whose configured environment is
// environment, reading ctl.deployment through q.
func New(environment string, q warehouse.Querier) *Guard {
	return &Guard{Environment: environment, Warehouse: q}
}

// Permit is the guard's leave to write to one site. Only the guard makes
// them, so a writer that demands one cannot be called unguarded.
type Permit struct {
	instance    string
	url         string
	environment string
	siteURL     string // the live siteurl; "" for a file feed's permit
}

// Instance is the name of the site the permit is for.
func (p *Permit) Instance() string { return p.instance }

// URL is the site's configured URL.
func (p *Permit) URL() string { return p.url }

// Environment is the environment all the checks agreed on.
func (p *Permit) Environment() string { return p.environment }

// WebServices reports whether the permit covers web-service writes, that
// is whether the live siteurl was checked too.
func (p *Permit) WebServices() bool { return p.siteURL != "" }

// Covers reports whether the permit allows web-service writes through a
// client for the site called instance at url.
func (p *Permit) Covers(instance, url string) bool {
	return p != nil && p.WebServices() && p.instance == instance && moodle.SameSite(p.url, url)
}

// Feed checks (1) and (2) for a file feed delivered to site (IMS
// Enterprise, profile CSV): Moodle reads the file itself, so there is no
// live siteurl to ask; the IMS <target> names the site instead. It returns
// a *RefusedError when a check fails.
func (g *Guard) Feed(ctx context.Context, site Site) (*Permit, error) {
	failures, err := g.local(ctx, site)
	if err != nil {
		return nil, err
	}
	if len(failures) > 0 {
		return nil, g.refused(site, failures, "")
	}
	return &Permit{instance: site.Name, url: site.URL, environment: g.Environment}, nil
}

// SiteInfoer is the part of a Moodle client the guard needs:
// *moodle.Client satisfies it.
type SiteInfoer interface {
	URL() string
	SiteInfo(ctx context.Context) (*moodle.SiteInfo, error)
}

// WebServices checks (1), (2) and (3) before web-service writes to site
// through live, a client for it. It asks the site who it is even when (1)
// or (2) already failed, so the refusal says everything that is wrong; it
// only ever reads. A refusal is a *RefusedError (exit 3). When the site
// cannot be asked and nothing else failed, the error is the client's:
// nothing may be written, but no guard refused.
func (g *Guard) WebServices(ctx context.Context, site Site, live SiteInfoer) (*Permit, *moodle.SiteInfo, error) {
	failures, err := g.local(ctx, site)
	if err != nil {
		return nil, nil, err
	}
	if !moodle.SameSite(live.URL(), site.URL) {
		failures = append(failures, Failure{LiveSiteURL, fmt.Sprintf(
			"the client talks to %s, not the configured %s", live.URL(), site.URL)})
		return nil, nil, g.refused(site, failures, "")
	}
	info, err := live.SiteInfo(ctx)
	if f, ok := redirected(site, err); ok {
		root, _ := moodle.Redirected(err)
		return nil, nil, g.refused(site, append(failures, f), root)
	}
	if err != nil {
		if len(failures) == 0 {
			return nil, nil, fmt.Errorf("asking Moodle site %s who it is before writing (nothing was written): %w", site.Name, err)
		}
		failures = append(failures, Failure{LiveSiteURL, "could not be checked: " + err.Error()})
		return nil, nil, g.refused(site, failures, "")
	}
	if !moodle.SameSite(site.URL, info.SiteURL) {
		failures = append(failures, Failure{LiveSiteURL, fmt.Sprintf(
			"the site at %s reports siteurl %s: another Moodle answers at the configured URL (a copied configuration, a hosts entry, a proxy?)",
			site.URL, info.SiteURL)})
	}
	if len(failures) > 0 {
		return nil, info, g.refused(site, failures, info.SiteURL)
	}
	return &Permit{instance: site.Name, url: site.URL, environment: g.Environment, siteURL: info.SiteURL}, info, nil
}

// Redirected turns err, an error reading site (its extraction, or any
// call), into the guard's refusal when Moodle redirected the request to
// another site root: the configured URL is not the live site's, as when the
// site reports another siteurl (check 3). It returns nil for any other
// error. Record the refusal with Record.
func (g *Guard) Redirected(site Site, err error) *RefusedError {
	f, ok := redirected(site, err)
	if !ok {
		return nil
	}
	root, _ := moodle.Redirected(err)
	return g.refused(site, []Failure{f}, root)
}

func redirected(site Site, err error) (Failure, bool) {
	root, ok := moodle.Redirected(err)
	if !ok || moodle.SameSite(root, site.URL) {
		return Failure{}, false
	}
	return Failure{LiveSiteURL, fmt.Sprintf(
		"the configured URL %s redirects to %s: Moodle's wwwroot is another site root (a hosts entry, a copied configuration, a proxy?); "+
			"if that is the site, configure url: %s", site.URL, root, root)}, true
}

// local runs checks (1) and (2).
func (g *Guard) local(ctx context.Context, site Site) ([]Failure, error) {
	var out []Failure
	switch {
	case g.Environment == "":
		out = append(out, Failure{SiteEnvironment, "this deployment names no environment"})
	case site.Environment != g.Environment:
		out = append(out, Failure{SiteEnvironment, fmt.Sprintf(
			"site %s is configured as environment %q but this deployment is %q", site.Name, site.Environment, g.Environment)})
	}
	d, err := warehouse.GetDeployment(ctx, g.Warehouse)
	if err != nil {
		return nil, fmt.Errorf("checking the warehouse's environment before writing to Moodle site %s: %w", site.Name, err)
	}
	switch {
	case d == nil:
		out = append(out, Failure{WarehouseLabel, "the warehouse has no environment label (ctl.deployment is empty); run `mim migrate`"})
	case d.Environment != g.Environment:
		out = append(out, Failure{WarehouseLabel, fmt.Sprintf(
			"the warehouse (ctl.deployment) belongs to environment %q, but this deployment is %q: a restored copy? "+
				"If this warehouse is now %s's, relabel it deliberately with `mim migrate --claim %s`",
			d.Environment, g.Environment, g.Environment, g.Environment)})
	default:
		// The label is bound to the warehouse it was written in: a
		// restored production warehouse under a copied production
		// configuration says "production" and still may not write.
		here, err := warehouse.CurrentIdentity(ctx, g.Warehouse)
		if err != nil {
			return nil, fmt.Errorf("checking the warehouse's identity before writing to Moodle site %s: %w", site.Name, err)
		}
		if why := d.Foreign(here); why != "" {
			out = append(out, Failure{WarehouseLabel, fmt.Sprintf(
				"the warehouse is labelled %q, but %s. If this warehouse is now %s's, claim it deliberately with `mim migrate --claim %s`",
				d.Environment, why, g.Environment, g.Environment)})
		}
	}
	return out, nil
}

func (g *Guard) refused(site Site, failures []Failure, live string) *RefusedError {
	return &RefusedError{Instance: site.Name, URL: site.URL, SiteEnvironment: site.Environment,
		Deployment: g.Environment, LiveSiteURL: live, Failures: failures}
}

// Record writes a refusal to ctl.guard_event (guard "environment",
// decision "refused") for run runID (0: no run). Any other error, or nil,
// records nothing.
func Record(ctx context.Context, q warehouse.Querier, runID int64, err error) error {
	var re *RefusedError
	if !errors.As(err, &re) {
		return nil
	}
	type failure struct {
		Check  int    `json:"check"`
		Name   string `json:"name"`
		Detail string `json:"detail"`
	}
	var checks []string
	fs := make([]failure, len(re.Failures))
	for i, f := range re.Failures {
		fs[i] = failure{int(f.Check), f.Check.String(), f.Detail}
		checks = append(checks, f.Check.String())
	}
	detail, jerr := json.Marshal(map[string]any{
		"failures": fs, "deployment": re.Deployment, "site_environment": re.SiteEnvironment,
		"configured_url": re.URL, "live_siteurl": re.LiveSiteURL,
	})
	if jerr != nil {
		return fmt.Errorf("encoding the environment guard's refusal: %w", jerr)
	}
	var run *int64
	if runID > 0 {
		run = &runID
	}
	if _, err := q.Exec(ctx, `INSERT INTO ctl.guard_event (run_id, instance, guard, decision, subject, detail)
		VALUES ($1, $2, $3, 'refused', $4, $5)`, run, re.Instance, Name, strings.Join(checks, ", "), detail); err != nil {
		return fmt.Errorf("recording the environment guard's refusal for site %s: %w", re.Instance, err)
	}
	return nil
}
