// Package config loads MIM's one YAML configuration file strictly: unknown keys
// are errors, ${VAR} and ${VAR:-default} come from the environment so secrets
// stay out of the file, and every problem is reported at once with its key
// path. Nothing here dials a database or a Moodle site.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mimwarehouse/mim/internal/schedule"
)

// Config is the whole of one deployment's configuration.
type Config struct {
	// Environment is this deployment's identity (production, staging, ...).
	// A Moodle site is written to only when its own environment, this value
	// and the warehouse's ctl.deployment all agree.
	Environment string `yaml:"environment"`
	// SecretsFile names a file of NAME=value lines (relative to this
	// file's directory) that ${NAME} references read when the environment
	// does not set NAME. It must not be readable by group or others.
	SecretsFile string       `yaml:"secrets_file"`
	Warehouse   Warehouse    `yaml:"warehouse"`
	Sources     Sources      `yaml:"sources"`
	Moodle      []MoodleSite `yaml:"moodle"`
	Exports     Exports      `yaml:"exports"`
	Notify      Notify       `yaml:"notify"`
	Schedule    Schedule     `yaml:"schedule"`
	Serve       Serve        `yaml:"serve"`
	Catalog     Catalog      `yaml:"catalog"`
	Log         Log          `yaml:"log"`
	Mappings    Mappings     `yaml:"mappings"`
	LTI         LTI          `yaml:"lti"`
}

// Warehouse is the PostgreSQL database MIM owns.
type Warehouse struct {
	DSN      DSN `yaml:"dsn"`
	MaxConns int `yaml:"max_conns"`
	// StatementTimeout and LockTimeout bound every transform statement, so
	// a stuck lock fails the night instead of hanging it.
	StatementTimeout time.Duration `yaml:"statement_timeout"`
	LockTimeout      time.Duration `yaml:"lock_timeout"`
}

// Sources are the student record and timetabling databases.
type Sources struct {
	SITS *SQLSource `yaml:"sits"`
	CMIS *SQLSource `yaml:"cmis"`
}

// SQLSource is a database read through database/sql: godror for Oracle in
// production, sqlserver for SQL Server (PowerCampus), pgx for a
// PostgreSQL-hosted copy.
type SQLSource struct {
	Driver string `yaml:"driver"`
	// System is what the database is: "sits" (the UCL_BDO_V_MOODLE_* views,
	// the default) or "powercampus" (PowerCampus tables read into the same
	// entities). SITS only.
	System string `yaml:"system"`
	DSN    DSN    `yaml:"dsn"`
	// Schema is the owner prefix of the views or tables (SISMGR, CMIS_OWNER);
	// empty means the connection's default schema.
	Schema string `yaml:"schema"`
	// MinYear drops academic years before it (SITS only).
	MinYear int `yaml:"min_year"`
	// Term keeps only this ACADEMIC_TERM (PowerCampus only; empty: every
	// term of the kept years).
	Term string `yaml:"term"`
	// MaxBadRowsPercent fails an entity whose unreadable rows exceed this share.
	MaxBadRowsPercent float64 `yaml:"max_bad_rows_percent"`
	// MaxShrinkPercent is, by entity, the share of its records one read may
	// delete before the read is suspect (see ShrinkLimits).
	MaxShrinkPercent ShrinkLimits  `yaml:"max_shrink_percent"`
	FetchSize        int           `yaml:"fetch_size"`
	Timeout          time.Duration `yaml:"timeout"`
}

// ShrinkLimits are, by entity name, the share (percent) of an entity's live
// records one read may delete before the read is suspect and lands nothing
// until completeness_override accepts it. 100 lets any shrink through but
// still refuses a read that comes back empty; -1 switches the judgement off.
// An entity not listed keeps the built-in default (load.DefaultShrinkLimit:
// Moodle users and SITS students 10, Moodle courses and enrolments, SITS
// registrations, CMIS groups and members 20, anything else 100).
type ShrinkLimits map[string]int

func (l ShrinkLimits) validate(path string, ps *problems) {
	for entity, v := range l {
		if v < -1 || v > 100 {
			ps.add(path+"."+entity, 0, "%d is not a percentage from 0 to 100 (or -1: never suspect)", v)
		}
	}
}

// DefaultMaxBadRowsPercent is max_bad_rows_percent when a source leaves it
// out; 0, given explicitly, lets no unreadable row through.
const DefaultMaxBadRowsPercent = 1

func (s *SQLSource) preset() { s.MaxBadRowsPercent = DefaultMaxBadRowsPercent }

// MoodleSite is one Moodle the warehouse reads from and feeds.
type MoodleSite struct {
	Name  string `yaml:"name"`
	URL   string `yaml:"url"`
	Token Secret `yaml:"token"`
	// Environment is the environment this Moodle belongs to; it must be
	// given explicitly, there is no default.
	Environment   string        `yaml:"environment"`
	RatePerSecond float64       `yaml:"rate_per_second"`
	Concurrency   int           `yaml:"concurrency"`
	MaxInputVars  int           `yaml:"max_input_vars"`
	Timeout       time.Duration `yaml:"timeout"`
	Retries       int           `yaml:"retries"`
	// Entities to extract; see MoodleEntities for the names.
	Entities []string `yaml:"entities"`
	// UserCriteria select users for core_user_get_users (default: all users).
	UserCriteria []Criterion `yaml:"user_criteria"`
	PageSize     int         `yaml:"page_size"`
	// Grades and Completion are heavy on Moodle (the grade report regrades a
	// course), so they are off unless enabled, and can be limited to categories.
	Grades     Optional `yaml:"grades"`
	Completion Optional `yaml:"completion"`
	// IMSTarget is the site's imsrestricttarget; it defaults to Name.
	IMSTarget string `yaml:"ims_target"`
	// GroupPrefix marks the idnumbers of groups and groupings MIM owns.
	GroupPrefix string `yaml:"group_prefix"`
	// IMSPersons puts a <person> for every row of mart.exp_ims_person of
	// the site in its IMS file (off: accounts come from LDAP/SSO).
	IMSPersons bool `yaml:"ims_persons"`
	// MainAuth is the authentication students log in with on the site
	// (ldap, saml2, ...); the merge list keeps an account of it. Empty: the
	// one most of the site's accounts carrying an idnumber have.
	MainAuth string `yaml:"main_auth"`
	// TutorDBUser is the warehouse login the site's enrol_dbuserrel
	// connects as (its dbuser); mim check verifies it may read the site's
	// tutor view and not the table of every site's pairs.
	TutorDBUser string `yaml:"tutor_db_user"`
	// KnownProfileFields are custom profile fields (shortnames) the site
	// has although no account holds a value yet. MIM learns a site's fields
	// from its users' values and writes no profile CSV naming a field it
	// has not seen: tool_uploaduser rejects a whole file for one unknown
	// column.
	KnownProfileFields []string `yaml:"known_profile_fields"`
	// MaxShrinkPercent is, by raw entity (users, enrolments, courses, ...),
	// the share of its records one read may delete (see ShrinkLimits).
	MaxShrinkPercent ShrinkLimits `yaml:"max_shrink_percent"`
	// Kind is how the site is read: KindMoodle (its web services, the
	// default) or KindMoodleDB (a read-only connection to its database,
	// usually a replica). Writes (group sync) always go through the web
	// services, so URL and token are required either way.
	Kind string `yaml:"kind"`
	// Database is the site's database, read when Kind is KindMoodleDB.
	Database *MoodleDatabase `yaml:"database"`
	// EnrolmentFeed is how the site is told its enrolments: "ims" (IMS
	// Enterprise for enrol_imsenterprise, the default) or "flatfile"
	// (enrol_flatfile, Open LMS Conduit). Both come from the same delta
	// and guards; a site takes one.
	EnrolmentFeed string `yaml:"enrolment_feed"`
	// Timezone is the site's time zone (IANA name, default UTC): flat-file
	// enrolments start and end at midnight there.
	Timezone string `yaml:"timezone"`
	// OneRoster writes the site's target as a OneRoster 1.2 CSV set too,
	// for the systems beside Moodle that read rosters (off by default).
	OneRoster bool `yaml:"oneroster"`
}

// Enrolment feeds a site may take (moodle[].enrolment_feed).
const (
	EnrolmentIMS      = "ims"
	EnrolmentFlatfile = "flatfile"
)

// Location is the site's time zone (UTC when unset or unknown; the
// configuration refuses an unknown one).
func (m *MoodleSite) Location() *time.Location {
	if loc, err := time.LoadLocation(m.Timezone); err == nil && m.Timezone != "" {
		return loc
	}
	return time.UTC
}

// The ways a Moodle site is read (moodle[].kind).
const (
	KindMoodle   = "moodle"
	KindMoodleDB = "moodle-db"
)

// MoodleDatabase is a read-only connection to a Moodle site's database.
type MoodleDatabase struct {
	// Driver is pgx (PostgreSQL) or mysql (MySQL or MariaDB).
	Driver string `yaml:"driver"`
	// DSN is a PostgreSQL URL or key=value string for pgx, or the
	// go-sql-driver form user:password@tcp(host:3306)/moodle for mysql.
	DSN DSN `yaml:"dsn"`
	// Prefix is the site's $CFG->prefix (default mdl_).
	Prefix string `yaml:"prefix"`
	// MaxLag refuses the read when the newest activity the database holds
	// (log, cron, modification times) is older than this: a replica that
	// fell behind shows an old state, which must not be taken for today's.
	MaxLag time.Duration `yaml:"max_lag"`
	// Timeout bounds the whole read.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultMoodleDBPrefix is moodle[].database.prefix when it is left out:
// Moodle's own default.
const DefaultMoodleDBPrefix = "mdl_"

// Criterion is one key/value of core_user_get_users.
type Criterion struct {
	Key   string `yaml:"key"`
	Value string `yaml:"value"`
}

// Optional switches a heavy extraction on, optionally for some categories only.
type Optional struct {
	Enabled bool `yaml:"enabled"`
	// Categories are category idnumbers; empty means every category.
	Categories []string `yaml:"categories"`
}

// Exports is where the feeds for Moodle are written and delivered.
type Exports struct {
	// Dir receives every file first (temp name, then rename) and keeps the archive.
	Dir string `yaml:"dir"`
	// Deliver is empty (files stay in Dir), a local directory path, or
	// sftp://user@host[:port]/path.
	Deliver string `yaml:"deliver"`
	SFTP    SFTP   `yaml:"sftp"`
	// IMSRoles maps MIM roles (student, editingteacher, teacher, ...) to IMS
	// roletype codes (01 Learner, 02 Instructor, ...).
	IMSRoles map[string]string `yaml:"ims_roles"`
	// ProfileFields are the columns of the profile CSV (none: no profile CSV).
	ProfileFields []ProfileField `yaml:"profile_fields"`
	// Merge chooses the kept account of the merge list and whether the
	// student code follows a merge.
	Merge Merge `yaml:"merge"`
}

// SFTP holds the credentials for sftp:// delivery.
type SFTP struct {
	KnownHosts string `yaml:"known_hosts"`
	KeyFile    string `yaml:"key_file"`
	Password   Secret `yaml:"password"`
}

// Notify is how MIM sends mail (threshold refusals, run summaries).
type Notify struct {
	SMTP SMTP     `yaml:"smtp"`
	To   []string `yaml:"to"`
}

// SMTP is the mail relay.
type SMTP struct {
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	From     string `yaml:"from"`
	// StartTLS is required unless the relay is on loopback.
	StartTLS bool `yaml:"starttls"`
}

// Schedule holds the cron expressions `mim serve` runs (CRON_TZ= prefix allowed).
type Schedule struct {
	Nightly string `yaml:"nightly"`
	Groups  string `yaml:"groups"`
	// Intraday runs the intraday cycle (`mim run --cycle intraday`): the
	// SIS sources, the transform and the enrolment delta; off when empty.
	Intraday string `yaml:"intraday"`
}

// Serve configures `mim serve`.
type Serve struct {
	Listen string `yaml:"listen"`
}

// Catalog is the CKAN instance marts are published to.
type Catalog struct {
	URL          string `yaml:"url"`
	APIKey       Secret `yaml:"api_key"`
	Organization string `yaml:"organization"`
	// Marts are the relations published, as names or globs over the mart
	// schema (default: every mart except the exp_* feed tables).
	Marts []string `yaml:"marts"`
	// DatasetPrefix starts every CKAN dataset name (default "mim-").
	DatasetPrefix string `yaml:"dataset_prefix"`
}

// Log configures MIM's own logging.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// MoodleEntities are the entity names a site's `entities` list accepts.
var MoodleEntities = []string{
	"site_info", "categories", "courses", "users", "enrolments", "roles",
	"groups", "groupings", "profile_fields", "grades", "completion", "enrol_methods",
}

// DefaultMoodleEntities are extracted when a site does not list its own.
var DefaultMoodleEntities = []string{
	"site_info", "categories", "courses", "users", "enrolments", "roles",
	"groups", "groupings", "profile_fields",
}

// DefaultWarehouseDSN is the local database the README's setup creates.
const DefaultWarehouseDSN = "postgres://mim:mim@127.0.0.1:5432/mim?sslmode=disable"

// Load reads and checks the configuration file at path, expanding variables
// from the process environment.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		// A file that cannot be read is a configuration error (exit 2) like
		// any other, said plainly.
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error()
		}
		return nil, &Error{File: path, Problems: []Problem{{Message: "cannot be read: " + msg}}}
	}
	env := os.LookupEnv
	if name := secretsFileOf(data); name != "" {
		if !filepath.IsAbs(name) {
			name = filepath.Join(filepath.Dir(path), name)
		}
		secrets, err := readSecrets(name)
		if err != nil {
			return nil, &Error{File: path, Problems: []Problem{{Path: "secrets_file", Message: err.Error()}}}
		}
		env = func(k string) (string, bool) {
			if v, ok := os.LookupEnv(k); ok {
				return v, true
			}
			v, ok := secrets[k]
			return v, ok
		}
	}
	cfg, err := Parse(data, env)
	var ce *Error
	if errors.As(err, &ce) {
		ce.File = path
	}
	return cfg, err
}

// Parse decodes, defaults and validates a configuration. env looks variables
// up (os.LookupEnv in production). The error, if any, is an *Error listing
// every problem.
func Parse(data []byte, env func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		return nil, &Error{Problems: []Problem{{Message: "not valid YAML: " + err.Error()}}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{Problems: []Problem{{Message: "more than one YAML document; MIM reads exactly one"}}}
	}
	ps := &problems{}
	cfg := &Config{}
	(&decoder{env: env, problems: ps}).decode(&root, reflect.ValueOf(cfg).Elem(), "")
	cfg.applyDefaults()
	cfg.validate(ps)
	if len(ps.list) > 0 {
		return cfg, &Error{Problems: ps.sorted()}
	}
	return cfg, nil
}

func (c *Config) applyDefaults() {
	if c.Warehouse.DSN == "" {
		c.Warehouse.DSN = DefaultWarehouseDSN
	}
	if c.Warehouse.MaxConns == 0 {
		c.Warehouse.MaxConns = 8
	}
	if c.Warehouse.StatementTimeout == 0 {
		c.Warehouse.StatementTimeout = 30 * time.Minute
	}
	if c.Warehouse.LockTimeout == 0 {
		c.Warehouse.LockTimeout = time.Minute
	}
	if c.Sources.SITS != nil && c.Sources.SITS.System == "" {
		c.Sources.SITS.System = "sits"
	}
	for _, s := range []*SQLSource{c.Sources.SITS, c.Sources.CMIS} {
		if s == nil {
			continue
		}
		if s.FetchSize == 0 {
			s.FetchSize = 5000
		}
		if s.Timeout == 0 {
			s.Timeout = 30 * time.Minute
		}
	}
	for i := range c.Moodle {
		m := &c.Moodle[i]
		if m.RatePerSecond == 0 {
			m.RatePerSecond = 10
		}
		if m.Concurrency == 0 {
			m.Concurrency = 4
		}
		if m.MaxInputVars == 0 {
			m.MaxInputVars = 900
		}
		if m.Timeout == 0 {
			m.Timeout = 60 * time.Second
		}
		if m.Retries == 0 {
			m.Retries = 4
		}
		if len(m.Entities) == 0 {
			m.Entities = append([]string(nil), DefaultMoodleEntities...)
		}
		if m.PageSize == 0 {
			m.PageSize = 1000
		}
		if m.IMSTarget == "" {
			m.IMSTarget = m.Name
		}
		if m.GroupPrefix == "" {
			m.GroupPrefix = "mim:"
		}
		if m.EnrolmentFeed == "" {
			m.EnrolmentFeed = EnrolmentIMS
		}
		if m.Timezone == "" {
			m.Timezone = "UTC"
		}
		if m.Kind == "" {
			m.Kind = KindMoodle
		}
		if d := m.Database; d != nil {
			if d.Prefix == "" {
				d.Prefix = DefaultMoodleDBPrefix
			}
			if d.MaxLag == 0 {
				d.MaxLag = 30 * time.Minute
			}
			if d.Timeout == 0 {
				d.Timeout = 10 * time.Minute
			}
		}
	}
	if c.Exports.Dir == "" {
		c.Exports.Dir = "/var/lib/mim/out"
	}
	c.Exports.Merge.applyDefaults()
	if c.Exports.IMSRoles == nil {
		c.Exports.IMSRoles = map[string]string{"student": "01", "editingteacher": "02", "teacher": "08"}
	}
	if c.Notify.SMTP.Port == 0 {
		c.Notify.SMTP.Port = 587
	}
	c.Mappings.applyDefaults()
	c.LTI.applyDefaults(c)
	if c.Serve.Listen == "" {
		c.Serve.Listen = "127.0.0.1:9464"
	}
	if len(c.Catalog.Marts) == 0 {
		c.Catalog.Marts = []string{"mart.*", "!mart.exp_*"}
	}
	if c.Catalog.DatasetPrefix == "" {
		c.Catalog.DatasetPrefix = "mim-"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
}

// catalog.marts entries and catalog.dataset_prefix.
var (
	catalogMart   = regexp.MustCompile(`^!?mart\.[a-z0-9_*?]+$`)
	catalogPrefix = regexp.MustCompile(`^[a-z0-9_-]{0,40}$`)
)

var (
	envName  = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	siteName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	imsRole  = regexp.MustCompile(`^0[1-8]$`)
)

func (c *Config) validate(ps *problems) {
	switch {
	case c.Environment == "":
		ps.add("environment", 0, "required: name this deployment (production, staging, test, ...)")
	case !envName.MatchString(c.Environment):
		ps.add("environment", 0, "%q is not a valid environment name (lower case letters, digits, - and _)", c.Environment)
	}
	if !strings.HasPrefix(c.Warehouse.DSN.Reveal(), "postgres://") && !strings.HasPrefix(c.Warehouse.DSN.Reveal(), "postgresql://") &&
		!strings.Contains(c.Warehouse.DSN.Reveal(), "=") {
		ps.add("warehouse.dsn", 0, "not a PostgreSQL connection string (postgres://user@host/db or key=value form)")
	}
	if c.Warehouse.MaxConns < 1 || c.Warehouse.MaxConns > 100 {
		ps.add("warehouse.max_conns", 0, "must be between 1 and 100")
	}
	for name, s := range map[string]*SQLSource{"sources.sits": c.Sources.SITS, "sources.cmis": c.Sources.CMIS} {
		if s != nil {
			s.validate(name, ps)
		}
	}
	if s := c.Sources.SITS; s != nil && !slices.Contains(SITSSystems, s.System) {
		ps.add("sources.sits.system", 0, "%q is not one of %s", s.System, strings.Join(SITSSystems, ", "))
	}
	if s := c.Sources.SITS; s != nil && s.Term != "" && s.System != "powercampus" {
		ps.add("sources.sits.term", 0, "only a PowerCampus source (system: powercampus) is read by term")
	}
	if s := c.Sources.CMIS; s != nil && s.Term != "" {
		ps.add("sources.cmis.term", 0, "only a PowerCampus source (system: powercampus) is read by term")
	}
	if s := c.Sources.CMIS; s != nil && s.System != "" && s.System != "cmis" {
		ps.add("sources.cmis.system", 0, "CMIS is read only from its own views (leave system out)")
	}
	names := map[string]bool{}
	for i := range c.Moodle {
		m := &c.Moodle[i]
		path := fmt.Sprintf("moodle[%d]", i)
		if m.Name != "" && names[m.Name] {
			ps.add(path+".name", 0, "site name %q is used twice", m.Name)
		}
		names[m.Name] = true
		m.validate(path, ps)
	}
	byCode := map[string][]string{}
	for role, code := range c.Exports.IMSRoles {
		if !imsRole.MatchString(code) {
			ps.add("exports.ims_roles."+role, 0, "%q is not an IMS roletype code (01 to 08)", code)
		}
		byCode[code] = append(byCode[code], role)
	}
	for i := range c.Moodle {
		if c.Moodle[i].EnrolmentFeed != EnrolmentFlatfile {
			continue
		}
		for code, roles := range byCode {
			if len(roles) > 1 {
				slices.Sort(roles)
				ps.add("exports.ims_roles", 0, "roles %s share code %s: a flat-file site (moodle[%d]) needs one role per code", strings.Join(roles, ", "), code, i)
			}
		}
		break
	}
	if c.Exports.Deliver != "" && strings.Contains(c.Exports.Deliver, "://") {
		u, err := url.Parse(c.Exports.Deliver)
		switch {
		case err != nil:
			ps.add("exports.deliver", 0, "not a valid URL")
		case u.Scheme != "sftp":
			ps.add("exports.deliver", 0, "scheme %q is not supported (use a local path or sftp://user@host/path)", u.Scheme)
		case u.User == nil || u.User.Username() == "" || u.Host == "":
			ps.add("exports.deliver", 0, "an sftp URL needs a user and a host: sftp://user@host/path")
		case c.Exports.SFTP.KnownHosts == "":
			ps.add("exports.sftp.known_hosts", 0, "required for sftp delivery: the host key is always checked")
		}
		if u != nil && u.User != nil {
			if _, has := u.User.Password(); has {
				ps.add("exports.deliver", 0, "do not put a password in the URL; use exports.sftp.password with ${VAR}")
			}
		}
	}
	if s := c.Notify.SMTP; s.Host != "" && s.From == "" {
		ps.add("notify.smtp.from", 0, "required when notify.smtp.host is set")
	}
	c.Exports.validateFeeds(ps)
	c.Exports.Merge.validate(ps)
	c.Notify.validateTLS(ps)
	for i, to := range c.Notify.To {
		if !strings.Contains(to, "@") {
			ps.add(fmt.Sprintf("notify.to[%d]", i), 0, "%q is not an e-mail address", to)
		}
	}
	c.Mappings.validate(c, ps)
	c.LTI.validate(c, ps)
	if c.Catalog.URL != "" {
		if u, err := url.Parse(c.Catalog.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			ps.add("catalog.url", 0, "not an http(s) URL")
		}
	}
	for i, m := range c.Catalog.Marts {
		if !catalogMart.MatchString(m) {
			ps.add(fmt.Sprintf("catalog.marts[%d]", i), 0, "%q is not mart.NAME or a glob such as mart.dim_* (prefix ! to exclude)", m)
		}
	}
	if !catalogPrefix.MatchString(c.Catalog.DatasetPrefix) {
		ps.add("catalog.dataset_prefix", 0, "%q is not the start of a CKAN name (lower case letters, digits, - and _, at most 40)", c.Catalog.DatasetPrefix)
	}
	for key, expr := range map[string]string{"schedule.nightly": c.Schedule.Nightly, "schedule.groups": c.Schedule.Groups,
		"schedule.intraday": c.Schedule.Intraday} {
		if expr == "" {
			continue
		}
		if _, err := schedule.Parse(expr, time.Local); err != nil {
			ps.add(key, 0, "%v", err)
		}
	}
	if _, _, err := net.SplitHostPort(c.Serve.Listen); err != nil {
		ps.add("serve.listen", 0, "%q is not host:port", c.Serve.Listen)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		ps.add("log.level", 0, "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		ps.add("log.format", 0, "%q is not one of text, json", c.Log.Format)
	}
}

// SQLDrivers are the drivers a relational source may name.
var SQLDrivers = []string{"godror", "sqlserver", "pgx"}

// SITSSystems are the student record systems sources.sits.system names.
var SITSSystems = []string{"sits", "powercampus"}

func (s *SQLSource) validate(path string, ps *problems) {
	switch {
	case slices.Contains(SQLDrivers, s.Driver):
	case s.Driver == "":
		ps.add(path+".driver", 0, "required: godror (Oracle), sqlserver (SQL Server) or pgx (a PostgreSQL-hosted copy)")
	default:
		ps.add(path+".driver", 0, "%q is not supported (use godror, sqlserver or pgx)", s.Driver)
	}
	if s.DSN == "" {
		ps.add(path+".dsn", 0, "required")
	}
	if s.MaxBadRowsPercent < 0 || s.MaxBadRowsPercent > 100 {
		ps.add(path+".max_bad_rows_percent", 0, "must be between 0 and 100")
	}
	s.MaxShrinkPercent.validate(path+".max_shrink_percent", ps)
	if s.MinYear != 0 && (s.MinYear < 1990 || s.MinYear > 2100) {
		ps.add(path+".min_year", 0, "%d is not a plausible academic start year", s.MinYear)
	}
	if s.Schema != "" && !sqlSchema.MatchString(s.Schema) {
		ps.add(path+".schema", 0, "%q is not a plain schema name (letters, digits, _, $ and #, starting with a letter)", s.Schema)
	}
}

// sqlSchema is an unquoted Oracle or PostgreSQL identifier: the SELECTs
// put the schema in front of the view names as written.
var sqlSchema = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_$#]{0,127}$`)

func (m *MoodleSite) validate(path string, ps *problems) {
	m.MaxShrinkPercent.validate(path+".max_shrink_percent", ps)
	switch {
	case m.Name == "":
		ps.add(path+".name", 0, "required")
	case !siteName.MatchString(m.Name):
		ps.add(path+".name", 0, "%q is not a valid site name (lower case letters, digits, - and _)", m.Name)
	}
	if m.URL == "" {
		ps.add(path+".url", 0, "required")
	} else if u, err := url.Parse(m.URL); err != nil || u.Host == "" {
		ps.add(path+".url", 0, "%q is not a URL", m.URL)
	} else if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		ps.add(path+".url", 0, "must be https (plain http is accepted only on loopback)")
	}
	if m.Token.IsZero() {
		ps.add(path+".token", 0, "required (use ${VAR} to keep it out of this file)")
	}
	switch {
	case m.Environment == "":
		ps.add(path+".environment", 0, "required: say which environment this Moodle belongs to; there is no default")
	case !envName.MatchString(m.Environment):
		ps.add(path+".environment", 0, "%q is not a valid environment name", m.Environment)
	}
	if m.RatePerSecond < 0 || m.RatePerSecond > 1000 {
		ps.add(path+".rate_per_second", 0, "must be between 0 and 1000")
	}
	if m.Concurrency < 1 || m.Concurrency > 64 {
		ps.add(path+".concurrency", 0, "must be between 1 and 64")
	}
	if m.MaxInputVars < 10 {
		ps.add(path+".max_input_vars", 0, "must be at least 10 (PHP's max_input_vars on the site, minus headroom)")
	}
	if m.PageSize < 1 || m.PageSize > 10000 {
		ps.add(path+".page_size", 0, "must be between 1 and 10000")
	}
	for j, e := range m.Entities {
		if !slices.Contains(MoodleEntities, e) {
			ps.add(fmt.Sprintf("%s.entities[%d]", path, j), 0, "unknown entity %q (known: %s)", e, strings.Join(MoodleEntities, ", "))
		}
	}
	for j, c := range m.UserCriteria {
		if c.Key == "" {
			ps.add(fmt.Sprintf("%s.user_criteria[%d].key", path, j), 0, "required")
		}
	}
	if m.GroupPrefix == "" || strings.TrimSpace(m.GroupPrefix) != m.GroupPrefix {
		ps.add(path+".group_prefix", 0, "must be non-empty without surrounding spaces")
	}
	m.validateMerge(path, ps)
	for j, f := range m.KnownProfileFields {
		if !profileShortname.MatchString(f) {
			ps.add(fmt.Sprintf("%s.known_profile_fields[%d]", path, j), 0, "%q is not a profile field shortname (letters, digits, _)", f)
		}
	}
	if m.EnrolmentFeed != EnrolmentIMS && m.EnrolmentFeed != EnrolmentFlatfile {
		ps.add(path+".enrolment_feed", 0, "%q is not ims or flatfile", m.EnrolmentFeed)
	}
	if _, err := time.LoadLocation(m.Timezone); err != nil {
		ps.add(path+".timezone", 0, "%q is not a time zone name (e.g. Europe/London)", m.Timezone)
	}
	switch m.Kind {
	case KindMoodle:
		if m.Database != nil {
			ps.add(path+".database", 0, "is read only with kind: %s (this site is read through its web services)", KindMoodleDB)
		}
	case KindMoodleDB:
		if m.Database == nil {
			ps.add(path+".database", 0, "required with kind: %s (driver, dsn, prefix, max_lag)", KindMoodleDB)
		} else {
			m.Database.validate(path+".database", ps)
		}
	default:
		ps.add(path+".kind", 0, "%q is not a way to read a site (use %s for its web services or %s for its database)", m.Kind, KindMoodle, KindMoodleDB)
	}
}

// moodlePrefix is a table prefix Moodle accepts ($CFG->prefix): it is
// written into every query as is.
var moodlePrefix = regexp.MustCompile(`^[a-z][a-z0-9_]{0,19}$`)

func (d *MoodleDatabase) validate(path string, ps *problems) {
	switch d.Driver {
	case "pgx", "mysql":
	case "":
		ps.add(path+".driver", 0, "required: pgx (PostgreSQL) or mysql (MySQL or MariaDB)")
	default:
		ps.add(path+".driver", 0, "%q is not supported (use pgx or mysql)", d.Driver)
	}
	if d.DSN == "" {
		ps.add(path+".dsn", 0, "required (use ${VAR} to keep the password out of this file)")
	}
	if !moodlePrefix.MatchString(d.Prefix) {
		ps.add(path+".prefix", 0, "%q is not a table prefix (lower case letters, digits and _, starting with a letter)", d.Prefix)
	}
	if d.MaxLag < time.Minute {
		ps.add(path+".max_lag", 0, "must be at least 1m: how old the newest activity in the database may be")
	}
	if d.Timeout < 0 {
		ps.add(path+".timeout", 0, "must not be negative")
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Site returns the configured Moodle site called name.
func (c *Config) Site(name string) (*MoodleSite, bool) {
	for i := range c.Moodle {
		if c.Moodle[i].Name == name {
			return &c.Moodle[i], true
		}
	}
	return nil, false
}
