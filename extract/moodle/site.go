package moodle

import (
	"context"
	"fmt"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/moodle"
)

// siteInfo asks the site who it is, records the answer, and says whether
// extraction can go on. A site whose live siteurl is not the configured
// URL is still read (reading harms nothing; writes are refused by the
// export guards) and a warning is logged.
func (x *extraction) siteInfo(ctx context.Context) bool {
	info, err := x.client.SiteInfo(ctx)
	if err != nil {
		err = fmt.Errorf("asking the site who it is (%s): %w", fnSiteInfo, err)
		// Nothing else can be read. Each selected entity is opened and
		// aborted so the ledger shows what did not run.
		for _, e := range x.Entities() {
			x.open(ctx, e).abort(err, false)
		}
		x.fail(err)
		return false
	}
	x.info = info
	if !moodle.SameSite(x.site.URL, info.SiteURL) {
		x.logger.Warn("the site reports another siteurl than the configured URL; it is read, but MIM writes nothing to it",
			"instance", x.site.Name, "configured_url", x.site.URL, "siteurl", info.SiteURL)
	}
	if x.db != nil {
		if err := x.recordSite(ctx, info); err != nil {
			x.fail(fmt.Errorf("recording the site's fingerprint in ctl.moodle_site: %w", err))
		}
	}
	if o := x.open(ctx, entSiteInfo); o != nil {
		x.expect(entSiteInfo, 1)
		if err := o.write(ctx, "site", "", info.Raw); err != nil {
			o.abort(err, true)
			return false
		}
		o.complete("")
		o.commit(ctx)
		x.done(entSiteInfo, 1)
	}
	return true
}

// recordSite upserts the site's fingerprint into ctl.moodle_site, under
// the run the sink lands records in (extract.RunIdentifier); with a sink
// that has no run, last_run_id keeps its value.
func (x *extraction) recordSite(ctx context.Context, info *moodle.SiteInfo) error {
	var runID *int64
	if r, ok := x.sink.(extract.RunIdentifier); ok {
		id := r.RunID()
		runID = &id
	}
	missing := []string{}
	if len(info.Functions) > 0 {
		missing = append(missing, info.Missing(Functions(x.site)...)...)
	}
	_, err := x.db.Exec(ctx, `INSERT INTO ctl.moodle_site AS s (instance, configured_url, environment, siteurl, sitename,
			release, version, missing_functions, last_run_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (instance) DO UPDATE SET configured_url = EXCLUDED.configured_url,
			environment = EXCLUDED.environment, siteurl = EXCLUDED.siteurl, sitename = EXCLUDED.sitename,
			release = EXCLUDED.release, version = EXCLUDED.version, missing_functions = EXCLUDED.missing_functions,
			last_seen = now(), last_run_id = coalesce(EXCLUDED.last_run_id, s.last_run_id)`,
		x.site.Name, x.site.URL, x.site.Environment, info.SiteURL, info.SiteName, info.Release, string(info.Version),
		missing, runID)
	return err
}
