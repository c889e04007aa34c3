package app

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/extract/cmis"
	"github.com/mimwarehouse/mim/extract/sits"
	"github.com/mimwarehouse/mim/extract/sqlsource"
	"github.com/mimwarehouse/mim/internal/config"
)

// The relational sources: SITS and CMIS, read through database/sql with the
// configured driver (godror for Oracle, pgx for a PostgreSQL copy).
func init() {
	RegisterSource("sits", func(_ context.Context, _ *Env, cfg *config.Config, _ string, opts extract.Options) (extract.Source, error) {
		if cfg.Sources.SITS == nil {
			return nil, Usagef("sources.sits is not configured")
		}
		return sits.New(cfg.Sources.SITS, opts)
	})
	RegisterSource("cmis", func(_ context.Context, _ *Env, cfg *config.Config, _ string, opts extract.Options) (extract.Source, error) {
		if cfg.Sources.CMIS == nil {
			return nil, Usagef("sources.cmis is not configured")
		}
		return cmis.New(cfg.Sources.CMIS, opts)
	})
	RegisterCheck("20-sql-sources", checkSQLSources)
}

// checkSQLSources dials SITS and CMIS and runs every SELECT without
// fetching a row: a missing view, column or grant shows here, not at night.
func checkSQLSources(ctx context.Context, e *Env) []CheckResult {
	cfg, err := e.Config()
	if err != nil {
		return nil
	}
	var out []CheckResult
	for _, s := range []struct {
		name string
		cfg  *config.SQLSource
		open func(*config.SQLSource, extract.Options) (*sqlsource.Source, error)
	}{{"sits", cfg.Sources.SITS, sits.New}, {"cmis", cfg.Sources.CMIS, cmis.New}} {
		if s.cfg == nil {
			continue
		}
		r := CheckResult{Target: s.name}
		src, err := s.open(s.cfg, extract.Options{})
		if err != nil {
			r.Detail = err.Error()
			out = append(out, r)
			continue
		}
		problems, err := src.Check(ctx)
		if err != nil {
			r.Detail = err.Error()
			out = append(out, r)
			continue
		}
		var bad []string
		for entity, p := range problems {
			if p != nil {
				bad = append(bad, entity+": "+p.Error())
			}
		}
		sort.Strings(bad)
		if len(bad) > 0 {
			r.Detail = fmt.Sprintf("%d of %d views unusable: %s", len(bad), len(problems), strings.Join(bad, "; "))
		} else {
			r.OK = true
			r.Detail = fmt.Sprintf("%s via %s: %d views readable (%s)", s.cfg.DSN, s.cfg.Driver, len(problems), strings.Join(src.Entities(), ", "))
		}
		out = append(out, r)
	}
	return out
}
