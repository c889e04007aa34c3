package synth

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/mimwarehouse/mim/internal/config"
)

// WorldSite is one simulated Moodle site a world's configuration names.
type WorldSite struct {
	Name, URL, Token string
	// Environment is the site's configured environment (default: the
	// deployment's).
	Environment string
	// DB, when set, is a PostgreSQL DSN of the site's tables: the site is
	// read from there (kind moodle-db).
	DB string
	// OneRoster writes the site's target as OneRoster 1.2 CSV too.
	OneRoster bool
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
	// VarPrefix starts the names of the ${NAME}s the text refers to
	// (default MIM_WORLD): <prefix>_DSN, <prefix>_TOKEN_<SITE>, ...
	VarPrefix string
}

// Config is the configuration of a synthetic world, parsed like any file.
func Config(o ConfigOptions) (*config.Config, error) {
	text, vars := ConfigText(o)
	return config.Parse([]byte(text), func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
}

var nonWord = regexp.MustCompile(`[^A-Za-z0-9]+`)

// ConfigText is a synthetic world's configuration as a file's text: the
// synthetic SITS and CMIS, the simulated sites, feeds written to Out; and
// the values of the ${NAME}s it refers to (the DSNs and each site's token),
// which are never part of the text.
func ConfigText(o ConfigOptions) (text string, vars map[string]string) {
	p := o.VarPrefix
	if p == "" {
		p = "MIM_WORLD"
	}
	if o.MaxConns == 0 {
		o.MaxConns = 12
	}
	dsn, sitsDSN := p+"_DSN", p+"_DSN"
	vars = map[string]string{dsn: o.DSN}
	if o.SITSDSN != "" {
		sitsDSN = p + "_SITS_DSN"
		vars[sitsDSN] = o.SITSDSN
	}
	var b strings.Builder
	fmt.Fprintf(&b, "environment: %s\nwarehouse: {dsn: \"${%s}\", max_conns: %d}\n", o.Environment, dsn, o.MaxConns)
	sits, cmis := Schemas("")
	fmt.Fprintf(&b, "sources:\n  sits: {driver: pgx, dsn: \"${%s}\", schema: %s, min_year: %d}\n  cmis: {driver: pgx, dsn: \"${%s}\", schema: %s}\n",
		sitsDSN, sits, o.MinYear, dsn, cmis)
	if len(o.Sites) > 0 {
		b.WriteString("moodle:\n")
	}
	for _, s := range o.Sites {
		tok := p + "_TOKEN_" + strings.ToUpper(nonWord.ReplaceAllString(s.Name, "_"))
		vars[tok] = s.Token
		env := s.Environment
		if env == "" {
			env = o.Environment
		}
		read := ""
		if s.DB != "" {
			vars[tok+"_DB"] = s.DB
			read = fmt.Sprintf(", kind: moodle-db, database: {driver: pgx, dsn: \"${%s_DB}\"}", tok)
		}
		// The sites' profile fields are declared, as a site's integration
		// team would: their accounts hold only upi values before MIM's
		// first profile file.
		fmt.Fprintf(&b, "  - {name: %s, url: %q, token: \"${%s}\", environment: %s, rate_per_second: 500, concurrency: 8, group_prefix: %q, oneroster: %t, known_profile_fields: [%s]%s}\n",
			s.Name, s.URL, tok, env, GroupPrefix, s.OneRoster, strings.Join(ProfileFieldNames(), ", "), read)
	}
	fmt.Fprintf(&b, "exports:\n  dir: %q\n  profile_fields:\n", o.Out)
	for _, f := range [][2]string{{"student_number", "studentno"}, {"programme_code", "progcode"}, {"programme_name", "programme"},
		{"ug_pg", "ugpg"}, {"year_level", "yearlevel"}, {"approved_modules", "approvedmodules"}, {"preapproval_modules", "preapprovalmodules"}} {
		fmt.Fprintf(&b, "    - {column: %s, shortname: %s}\n", f[0], f[1])
	}
	b.WriteString("log: {level: warn}\n")
	return b.String(), vars
}
