package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/mimwarehouse/mim/extract"
	moodlex "github.com/mimwarehouse/mim/extract/moodle"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/wire"
)

// The Moodle sites: one source per configured site ("moodle:NAME"), read
// through its web services within the site's own rate and concurrency, or,
// for kind moodle-db, from its database.
func openMoodleSource(ctx context.Context, e *Env, cfg *config.Config, name string, opts extract.Options) (extract.Source, error) {
	_, inst := SourceKind(name)
	site, ok := cfg.Site(inst)
	if !ok {
		return nil, Usagef("no Moodle site called %q is configured", inst)
	}
	var se *moodlex.SelectionError
	if site.Kind == config.KindMoodleDB {
		src, err := moodlex.NewDB(wire.MoodleSite(site), opts, moodlex.WithLogger(e.Logger))
		if errors.As(err, &se) {
			return nil, Usagef("%s", se.Msg)
		}
		return src, err
	}
	client, err := MoodleClient(e, site)
	if err != nil {
		return nil, fmt.Errorf("building the web-service client: %w", err)
	}
	// The warehouse lets the source record the site's fingerprint
	// (ctl.moodle_site) and close the scopes of courses Moodle no longer has.
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return nil, err
	}
	src, err := moodlex.New(client, wire.MoodleSite(site), opts, moodlex.WithWarehouse(pool), moodlex.WithLogger(e.Logger))
	if errors.As(err, &se) {
		return nil, Usagef("%s", se.Msg)
	}
	return src, err
}
