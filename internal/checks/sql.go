package checks

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/extract/sqlsource"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/wire"
)

// SQLSources dials SITS and CMIS and runs every SELECT without fetching a
// row: a missing view, column or grant shows here, not at night.
func SQLSources(ctx context.Context, d Deps) []Result {
	cfg := d.Config
	var out []Result
	for _, s := range []struct {
		name string
		cfg  *config.SQLSource
		open func(*config.SQLSource, extract.Options) (*sqlsource.Source, error)
	}{{"sits", cfg.Sources.SITS, wire.NewSITS}, {"cmis", cfg.Sources.CMIS, wire.NewCMIS}} {
		if s.cfg == nil {
			continue
		}
		r := Result{Target: s.name}
		src, err := s.open(s.cfg, extract.Options{})
		if err != nil {
			r.Detail = err.Error()
			out = append(out, r)
			continue
		}
		rep, err := src.Check(ctx)
		if err != nil {
			r.Detail = err.Error()
			out = append(out, r)
			continue
		}
		out = append(out, sqlCheckLines(s.name, s.cfg, src, rep)...)
	}
	return out
}

// sqlCheckLines turns a source's check into `mim check` lines: a summary,
// then one line per relation naming every missing or retyped column.
func sqlCheckLines(name string, cfg *config.SQLSource, src *sqlsource.Source, rep *sqlsource.CheckReport) []Result {
	var lines []Result
	badRels := 0
	for _, rc := range rep.Relations {
		l := Result{Target: name + " " + rc.Name, OK: rc.OK()}
		switch {
		case rc.Err != nil:
			l.Detail = "cannot be described: " + rc.Err.Error()
		case len(rc.Problems) > 0:
			l.Detail = strings.Join(rc.Problems, "; ")
		default:
			l.Detail = fmt.Sprintf("%d columns, as the contract says", rc.Columns)
		}
		if len(rc.Notes) > 0 {
			l.Detail += "; note: " + strings.Join(rc.Notes, "; ")
		}
		if !l.OK {
			badRels++
		}
		lines = append(lines, l)
	}
	var bad []string
	for entity, p := range rep.Entities {
		if p != nil {
			bad = append(bad, entity+": "+p.Error())
		}
	}
	sort.Strings(bad)
	sum := Result{Target: name, OK: rep.OK()}
	switch {
	case len(rep.Uncontracted) > 0:
		sum.Detail = "the source contract does not describe " + strings.Join(rep.Uncontracted, ", ")
	case badRels > 0 || len(bad) > 0:
		sum.Detail = fmt.Sprintf("%d of %d relations differ from the contract, %d of %d SELECTs unusable", badRels, len(rep.Relations), len(bad), len(rep.Entities))
		if len(bad) > 0 {
			sum.Detail += ": " + strings.Join(bad, "; ")
		}
	default:
		via := cfg.Driver
		if cfg.System != "" && cfg.System != name {
			via += ", " + cfg.System
		}
		sum.Detail = fmt.Sprintf("%s via %s: %d relations as the contract says, %d views readable (%s)", cfg.DSN, via,
			len(rep.Relations), len(rep.Entities), strings.Join(src.Entities(), ", "))
	}
	return append([]Result{sum}, lines...)
}
