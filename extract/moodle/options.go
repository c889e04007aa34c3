package moodle

import (
	"time"

	"github.com/mimwarehouse/mim/internal/secret"
)

// Site is what the extractor knows of one Moodle site (moodle[] in the
// configuration; wire.MoodleSite converts it).
type Site struct {
	// Name, URL and Environment say which site this is; the run's record
	// of the site (site_info) carries them.
	Name        string
	URL         string
	Environment string
	// Entities to extract (see EntityNames); empty means
	// DefaultEntityNames.
	Entities []string
	// UserCriteria select users for core_user_get_users (default: all).
	UserCriteria []Criterion
	// PageSize is the enrolled users per request; Concurrency how many
	// courses are read at once.
	PageSize    int
	Concurrency int
	// Grades and Completion are heavy on Moodle, so they are off unless
	// enabled, and can be limited to categories.
	Grades     Optional
	Completion Optional
	// Database is the site's database, read instead of its web services
	// by NewDB (kind moodle-db); nil for a site read through them.
	Database *Database
}

// Criterion is one key/value of core_user_get_users.
type Criterion struct {
	Key   string
	Value string
}

// Optional switches a heavy extraction on, optionally for some categories
// only (their idnumbers; empty: every category).
type Optional struct {
	Enabled    bool
	Categories []string
}

// Database is a read-only connection to a Moodle site's database.
type Database struct {
	// Driver is pgx (PostgreSQL) or mysql (MySQL or MariaDB).
	Driver string
	DSN    secret.DSN
	// Prefix is the site's $CFG->prefix (mdl_).
	Prefix string
	// MaxLag refuses the read when the newest activity the database holds
	// is older than this.
	MaxLag time.Duration
	// Timeout bounds the whole read.
	Timeout time.Duration
}

// EntityNames are the entity names a site's Entities may list.
var EntityNames = []string{
	"site_info", "categories", "courses", "users", "enrolments", "roles",
	"groups", "groupings", "profile_fields", "grades", "completion", "enrol_methods",
}

// DefaultEntityNames are extracted when a site does not list its own.
var DefaultEntityNames = []string{
	"site_info", "categories", "courses", "users", "enrolments", "roles",
	"groups", "groupings", "profile_fields",
}
