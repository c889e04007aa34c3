package wire

import (
	"github.com/mimwarehouse/mim/export/groupsync"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/envguard"
)

// GuardSite is a configured site as the environment guard sees it.
func GuardSite(s *config.MoodleSite) envguard.Site {
	return envguard.Site{Name: s.Name, URL: s.URL, Environment: s.Environment}
}

// GroupSite is a configured site as group sync sees it.
func GroupSite(s *config.MoodleSite) *groupsync.Site {
	return &groupsync.Site{Name: s.Name, URL: s.URL, Environment: s.Environment,
		GroupPrefix: s.GroupPrefix, Concurrency: s.Concurrency, PageSize: s.PageSize, ReadsDatabase: s.Kind == config.KindMoodleDB || s.Database != nil}
}
