package wire

import (
	"github.com/mimwarehouse/mim/export/groupsync"
	moodlex "github.com/mimwarehouse/mim/extract/moodle"
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

// MoodleSite is a configured site as its extractor sees it.
func MoodleSite(s *config.MoodleSite) *moodlex.Site {
	out := &moodlex.Site{Name: s.Name, URL: s.URL, Environment: s.Environment, Entities: s.Entities,
		PageSize: s.PageSize, Concurrency: s.Concurrency,
		Grades:     moodlex.Optional{Enabled: s.Grades.Enabled, Categories: s.Grades.Categories},
		Completion: moodlex.Optional{Enabled: s.Completion.Enabled, Categories: s.Completion.Categories}}
	for _, c := range s.UserCriteria {
		out.UserCriteria = append(out.UserCriteria, moodlex.Criterion{Key: c.Key, Value: c.Value})
	}
	if d := s.Database; d != nil {
		out.Database = &moodlex.Database{Driver: d.Driver, DSN: d.DSN, Prefix: d.Prefix, MaxLag: d.MaxLag, Timeout: d.Timeout}
	}
	return out
}
