package feeds

import (
	"time"

	"github.com/mimwarehouse/mim/export/csvfeed"
	"github.com/mimwarehouse/mim/export/deliver"
)

// Config is what an Exporter is set up with: the deployment's environment,
// where files go, how roles and profile fields are written, and the sites
// fed. wire.Feeds derives it from the configuration (environment,
// exports.*, moodle[]).
type Config struct {
	// Environment is the deployment's; the environment guard compares each
	// site's with it.
	Environment string
	// Deliver is where files are written (Deliver.Dir, which keeps the
	// archive too) and delivered.
	Deliver deliver.Options
	// IMSRoles maps MIM roles (student, editingteacher, ...) to IMS roletype
	// codes (exports.ims_roles).
	IMSRoles map[string]string
	// ProfileFields are the columns of the profile CSV (none: no profile
	// CSV).
	ProfileFields []ProfileField
	// CarryIDNumber moves a student code to the kept account after an
	// observed merge, through the profile CSV (exports.merge.carry_idnumber).
	CarryIDNumber bool
	// Sites are the Moodle sites fed, in the configuration's order.
	Sites []Site
}

// Site is what the export knows of one Moodle site (moodle[]).
type Site struct {
	// Name, URL and Environment identify the site to the environment guard.
	Name        string
	URL         string
	Environment string
	// IMSTarget is the site's imsrestricttarget.
	IMSTarget string
	// EnrolmentFeed is IMS or Flatfile: the one enrolment file the site
	// takes.
	EnrolmentFeed Feed
	// IMSPersons puts a <person> for every account of the site in its IMS
	// file.
	IMSPersons bool
	// OneRoster writes the site's target as OneRoster 1.2 CSV too.
	OneRoster bool
	// Location is the site's time zone (nil: UTC): flat-file enrolments
	// start and end at midnight there.
	Location *time.Location
	// KnownProfileFields are profile fields the site has although no
	// account holds a value yet.
	KnownProfileFields []string
}

// location is the site's time zone, UTC when none is set.
func (s *Site) location() *time.Location {
	if s.Location == nil {
		return time.UTC
	}
	return s.Location
}

// ProfileField is one column of the profile CSV: the column of
// mart.exp_profile_fields it is fed from (one of ProfileColumns) and the
// site's profile field it is written to.
type ProfileField struct {
	Column string
	csvfeed.Field
}

// ProfileColumns are the columns of mart.exp_profile_fields a profile field
// may be fed from.
var ProfileColumns = []string{
	"student_number", "programme_name", "programme_code", "ug_pg",
	"approved_modules", "preapproval_modules", "year_level",
}

// site returns the configured site called name.
func (c *Config) site(name string) (*Site, bool) {
	for i := range c.Sites {
		if c.Sites[i].Name == name {
			return &c.Sites[i], true
		}
	}
	return nil, false
}
