package wire

import (
	"github.com/mimwarehouse/mim/export/csvfeed"
	"github.com/mimwarehouse/mim/export/deliver"
	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/internal/config"
)

// Feeds is the exporter's setup: the environment, exports.* and every
// configured site.
func Feeds(cfg *config.Config) *feeds.Config {
	out := &feeds.Config{
		Environment:   cfg.Environment,
		Deliver:       Deliver(cfg.Exports),
		IMSRoles:      cfg.Exports.IMSRoles,
		ProfileFields: ProfileFields(cfg.Exports.ProfileFields),
		CarryIDNumber: cfg.Exports.Merge.Carry(),
	}
	for i := range cfg.Moodle {
		out.Sites = append(out.Sites, FeedSite(&cfg.Moodle[i]))
	}
	return out
}

// FeedSite is a configured site as the export sees it.
func FeedSite(s *config.MoodleSite) feeds.Site {
	feed := feeds.IMS
	if s.EnrolmentFeed == config.EnrolmentFlatfile {
		feed = feeds.Flatfile
	}
	return feeds.Site{Name: s.Name, URL: s.URL, Environment: s.Environment, IMSTarget: s.IMSTarget,
		EnrolmentFeed: feed, IMSPersons: s.IMSPersons, OneRoster: s.OneRoster, Location: s.Location(),
		KnownProfileFields: s.KnownProfileFields}
}

// Deliver is where exported files are written and delivered (exports.dir,
// exports.deliver, exports.sftp).
func Deliver(e config.Exports) deliver.Options {
	return deliver.Options{Dir: e.Dir, Deliver: e.Deliver,
		SFTP: deliver.SFTPAuth{KnownHosts: e.SFTP.KnownHosts, KeyFile: e.SFTP.KeyFile, Password: e.SFTP.Password}}
}

// ProfileFields are the profile CSV's columns (exports.profile_fields), in
// the configured order.
func ProfileFields(pf []config.ProfileField) []feeds.ProfileField {
	out := make([]feeds.ProfileField, len(pf))
	for i, p := range pf {
		out[i] = feeds.ProfileField{Column: p.Column,
			Field: csvfeed.Field{Shortname: p.Shortname, Type: csvfeed.Type(p.Type), Options: p.Options, Required: p.Required}}
	}
	return out
}
