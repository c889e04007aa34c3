package checks

import (
	"context"
	"fmt"
	"strings"

	"github.com/mimwarehouse/mim/internal/lti"
)

// LTI is `mim check` of the LTI tool: its key loads, and every site of
// lti.sites has registered it and serves its keys.
func LTI(ctx context.Context, d Deps) []Result {
	cfg := d.Config
	if cfg == nil || !cfg.LTI.Enabled() {
		return nil
	}
	k := Result{Target: "lti key"}
	if key, err := lti.LoadKey(cfg.LTI.KeyFile); err != nil {
		k.Detail = err.Error()
	} else {
		k.OK, k.Detail = true, fmt.Sprintf("%s: RSA %d bits; the tool is at %s/lti/", cfg.LTI.KeyFile, key.N.BitLen(), cfg.LTI.URL)
	}
	out := []Result{k}
	if d.Pool == nil {
		return out // the warehouse check says why
	}
	ps, err := lti.Platforms(ctx, d.Pool, "")
	if err != nil {
		return append(out, Result{Target: "lti", Detail: err.Error()})
	}
	for _, site := range cfg.LTI.Sites {
		r := Result{Target: "lti:" + site}
		var active []lti.Platform
		for _, p := range ps {
			if p.Instance == site && p.Active {
				active = append(active, p)
			}
		}
		if len(active) == 0 {
			r.Detail = fmt.Sprintf("not registered: paste %s/lti/register into the site's Manage tools (Add LTI Advantage), or mim lti register", cfg.LTI.URL)
			out = append(out, r)
			continue
		}
		var bad []string
		for _, p := range active {
			if err := lti.CheckKeys(ctx, p.JWKSURL); err != nil {
				bad = append(bad, fmt.Sprintf("registration %d: %v", p.ID, err))
			}
		}
		if len(bad) > 0 {
			r.Detail = strings.Join(bad, "; ")
		} else {
			r.OK, r.Detail = true, fmt.Sprintf("%d registration(s); the platform's keys answer", len(active))
		}
		out = append(out, r)
	}
	return out
}
