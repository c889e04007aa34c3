package checks

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	moodlex "github.com/mimwarehouse/mim/extract/moodle"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/load"
	"github.com/mimwarehouse/mim/moodle"
)

// Moodle asks every configured site who it is, at once: the live
// siteurl must be the configured URL, and the token's service must hold
// the functions reading the site needs. A second line per site says
// whether group sync could write there; missing write functions fail the
// check only where this deployment may write (same environment).
func Moodle(ctx context.Context, d Deps) []Result {
	cfg := d.Config
	if len(cfg.Moodle) == 0 {
		return nil
	}
	results := make([][]Result, len(cfg.Moodle))
	var wg sync.WaitGroup
	for i := range cfg.Moodle {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = moodleSite(ctx, d, cfg.Environment, &cfg.Moodle[i])
		}()
	}
	wg.Wait()
	var out []Result
	for _, r := range results {
		out = append(out, r...)
	}
	return out
}

func moodleSite(ctx context.Context, d Deps, environment string, site *config.MoodleSite) []Result {
	var database []Result
	if site.Kind == config.KindMoodleDB {
		database = []Result{moodleDatabase(ctx, site)}
	}
	return append(database, moodleWebServices(ctx, d, environment, site)...)
}

// moodleDatabase dials a moodle-db site's database and checks every
// table a read needs is there, with the configured prefix, and readable.
func moodleDatabase(ctx context.Context, site *config.MoodleSite) Result {
	r := Result{Target: "moodle:" + site.Name + " database"}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	missing, checked, err := moodlex.CheckDB(ctx, wire.MoodleSite(site))
	switch {
	case err != nil:
		r.Detail = err.Error()
	case len(missing) > 0:
		r.Detail = fmt.Sprintf("%d of the %d tables a read needs are missing or not readable: %s (is the prefix %q right, and SELECT granted?)",
			len(missing), checked, strings.Join(missing, ", "), site.Database.Prefix)
	default:
		r.OK = true
		r.Detail = fmt.Sprintf("%s via %s: the %d tables a read needs (prefix %s) are readable", site.Database.DSN, site.Database.Driver,
			checked, site.Database.Prefix)
	}
	return r
}

func moodleWebServices(ctx context.Context, d Deps, environment string, site *config.MoodleSite) []Result {
	read := Result{Target: "moodle:" + site.Name}
	// A check should answer quickly: one retry, a short timeout.
	c, err := d.Client(site, moodle.WithRetries(min(site.Retries, 1)), moodle.WithTimeout(min(site.Timeout, 20*time.Second)))
	if err != nil {
		read.Detail = err.Error()
		return []Result{read}
	}
	info, err := c.SiteInfo(ctx)
	if err != nil {
		read.Detail = "asking the site who it is: " + err.Error()
		return []Result{read}
	}
	var problems []string
	if !moodle.SameSite(site.URL, info.SiteURL) {
		problems = append(problems, fmt.Sprintf("its siteurl is %s, not the configured %s: a different site answers, so MIM reads and writes nothing there",
			info.SiteURL, site.URL))
	}
	if missing := info.Missing(moodlex.Functions(wire.MoodleSite(site))...); len(missing) > 0 {
		problems = append(problems, "the token's service lacks "+strings.Join(missing, ", ")+" (add them to the external service)")
	}
	about := fmt.Sprintf("Moodle %s, %q, web-service user %s", info.Release, info.SiteName, info.Username)
	if len(problems) > 0 {
		read.Detail = about + ": " + strings.Join(problems, "; ")
	} else {
		read.OK = true
		read.Detail = fmt.Sprintf("%s at %s; the %d functions reading it needs are in the token's service",
			about, info.SiteURL, len(moodlex.Functions(wire.MoodleSite(site))))
	}
	out := []Result{read}
	if read.OK {
		out = append(out, moodleAccess(ctx, d, site, c)...)
	}
	write := Result{Target: "moodle:" + site.Name + " group sync"}
	missing := info.Missing(moodle.GroupWriteFunctions...)
	writable := site.Environment == environment
	switch {
	case len(missing) == 0 && writable:
		write.OK = true
		write.Detail = "the token may create, fill and delete groups (writes still need the environment and siteurl checks to pass at run time)"
	case len(missing) == 0:
		write.OK = true
		write.Detail = fmt.Sprintf("the token could write groups, but the site belongs to environment %q and this deployment is %q: MIM never writes there", site.Environment, environment)
	case writable:
		write.Detail = "group sync would fail: the token's service lacks " + strings.Join(missing, ", ")
	default:
		write.OK = true
		write.Detail = fmt.Sprintf("read-only token (lacks %d group functions); the site belongs to environment %q, so MIM does not write there anyway",
			len(missing), site.Environment)
	}
	out = append(out, write)
	if read.OK && writable && len(missing) == 0 {
		out = append(out, inputVars(ctx, site, c))
	}
	return out
}

// moodleAccess proves the token sees what extraction reads (one line
// per finding), aimed at users and a course the warehouse knows when it
// can be reached.
func moodleAccess(ctx context.Context, d Deps, site *config.MoodleSite, c *moodle.Client) []Result {
	var hint moodlex.AccessHint
	if d.Pool != nil {
		sample, _ := load.SampleMoodleSite(ctx, d.Pool, site.Name) // without one, the check looks at the lowest ids
		hint = moodlex.AccessHint(sample)
	}
	var out []Result
	for _, a := range moodlex.CheckAccess(ctx, c, wire.MoodleSite(site), hint) {
		out = append(out, Result{Target: "moodle:" + site.Name + " " + a.What, OK: a.OK, Detail: a.Detail})
	}
	return out
}

// maxInputVarsProbe is the largest request the check sends to measure
// max_input_vars: far above PHP's default of 1000.
const maxInputVarsProbe = 20000

// inputVars measures the site's max_input_vars and compares it with
// the configured budget: PHP drops what is beyond without a word, so a
// budget above the real limit cuts group writes short silently.
func inputVars(ctx context.Context, site *config.MoodleSite, c *moodle.Client) Result {
	r := Result{Target: "moodle:" + site.Name + " max_input_vars"}
	m, err := c.MeasureInputVars(ctx, maxInputVarsProbe)
	switch {
	case err != nil:
		r.Detail = "could not be measured: " + err.Error()
	case m.Limit < site.MaxInputVars:
		r.Detail = fmt.Sprintf("PHP keeps %d form variables per request, but max_input_vars is configured as %d: "+
			"group writes would be cut short without an error; set max_input_vars: %d (or raise the site's php.ini)",
			m.Limit+1, site.MaxInputVars, m.Limit)
	default:
		r.OK = true
		limit := strconv.Itoa(m.Limit)
		if m.AtLeast {
			limit = "at least " + limit
		}
		r.Detail = fmt.Sprintf("the site's max_input_vars is %s (%d requests to measure); MIM sends at most %d per request",
			limit, m.Requests, site.MaxInputVars)
	}
	return r
}
