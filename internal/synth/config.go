package synth

import (
	"fmt"
	"strings"

	"github.com/mimwarehouse/mim/internal/config"
)

// WorldSite is one simulated Moodle site a world's configuration names.
type WorldSite struct {
	Name, URL, Token string
	// Environment is the site's configured environment (default: the
	// deployment's).
	Environment string
}

// ConfigOptions shape the configuration that runs MIM on a synthetic
// institution (`mim demo`, `mim drill`).
type ConfigOptions struct {
	// Environment is the deployment's.
	Environment string
	// DSN is the warehouse; SITS and CMIS are read from it too (schemas
	// sismgr and moodlemgr), unless SITSDSN names another database for SITS.
	DSN, SITSDSN string
	// Out is exports.dir.
	Out     string
	MinYear int
	Sites   []WorldSite
	// MaxConns is warehouse.max_conns (default 12).
	MaxConns int
}

// Config is the configuration of a synthetic world: the synthetic SITS and
// CMIS, the simulated sites, feeds written to Out. It goes through
// config.Parse like any file, so it is checked the same way; the DSNs and
// tokens come in as variables and are never part of the text.
func Config(o ConfigOptions) (*config.Config, error) {
	vars := map[string]string{"DSN": o.DSN, "SITS_DSN": o.DSN}
	if o.SITSDSN != "" {
		vars["SITS_DSN"] = o.SITSDSN
	}
	var b strings.Builder
	if o.MaxConns == 0 {
		o.MaxConns = 12
	}
	fmt.Fprintf(&b, "environment: %s\nwarehouse: {dsn: \"${DSN}\", max_conns: %d}\n", o.Environment, o.MaxConns)
	sits, cmis := Schemas("")
	fmt.Fprintf(&b, "sources:\n  sits: {driver: pgx, dsn: \"${SITS_DSN}\", schema: %s, min_year: %d}\n  cmis: {driver: pgx, dsn: \"${DSN}\", schema: %s}\n",
		sits, o.MinYear, cmis)
	if len(o.Sites) > 0 {
		b.WriteString("moodle:\n")
	}
	for i, s := range o.Sites {
		tok := fmt.Sprintf("TOKEN_%d", i)
		vars[tok] = s.Token
		env := s.Environment
		if env == "" {
			env = o.Environment
		}
		fmt.Fprintf(&b, "  - {name: %s, url: %q, token: \"${%s}\", environment: %s, rate_per_second: 500, concurrency: 8, group_prefix: %q}\n",
			s.Name, s.URL, tok, env, GroupPrefix)
	}
	fmt.Fprintf(&b, "exports:\n  dir: %q\n  profile_fields:\n", o.Out)
	for _, f := range [][2]string{{"student_number", "studentno"}, {"programme_code", "progcode"}, {"programme_name", "programme"},
		{"ug_pg", "ugpg"}, {"year_level", "yearlevel"}, {"approved_modules", "approvedmodules"}, {"preapproval_modules", "preapprovalmodules"}} {
		fmt.Fprintf(&b, "    - {column: %s, shortname: %s}\n", f[0], f[1])
	}
	b.WriteString("log: {level: warn}\n")
	return config.Parse([]byte(b.String()), func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
}
