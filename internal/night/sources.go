package night

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/mimwarehouse/mim/extract"
	moodlex "github.com/mimwarehouse/mim/extract/moodle"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/wire"
)

// Opener builds one configured source. name is the full source name
// ("sits", "cmis", "moodle:main"); opts carry the operator's entity filter
// and the progress display.
type Opener func(ctx context.Context, e *Env, name string, opts extract.Options) (extract.Source, error)

// Sources are the source kinds a night can open, by kind ("sits", "cmis",
// "moodle").
type Sources map[string]Opener

// Builtin is every source kind this binary can open: SITS and CMIS (a
// student record or timetable read through database/sql with the
// configured driver: godror for Oracle, pgx for a PostgreSQL copy,
// sqlserver for PowerCampus), and Moodle sites (web services, or the
// site's database for kind moodle-db).
func Builtin() Sources {
	return Sources{"sits": openSITS, "cmis": openCMIS, "moodle": openMoodle}
}

func openSITS(_ context.Context, e *Env, _ string, opts extract.Options) (extract.Source, error) {
	if e.Config.Sources.SITS == nil {
		return nil, Usagef("sources.sits is not configured")
	}
	return wire.NewSITS(e.Config.Sources.SITS, opts)
}

func openCMIS(_ context.Context, e *Env, _ string, opts extract.Options) (extract.Source, error) {
	if e.Config.Sources.CMIS == nil {
		return nil, Usagef("sources.cmis is not configured")
	}
	return wire.NewCMIS(e.Config.Sources.CMIS, opts)
}

// openMoodle opens one site ("moodle:NAME"): read through its web services
// within the site's own rate and concurrency or, for kind moodle-db, from
// its database.
func openMoodle(ctx context.Context, e *Env, name string, opts extract.Options) (extract.Source, error) {
	_, inst := SourceKind(name)
	site, ok := e.Config.Site(inst)
	if !ok {
		return nil, Usagef("no Moodle site called %q is configured", inst)
	}
	var se *moodlex.SelectionError
	if site.Kind == config.KindMoodleDB {
		src, err := moodlex.NewDB(wire.MoodleSite(site), opts, moodlex.WithLogger(e.logger()))
		if errors.As(err, &se) {
			return nil, Usagef("%s", se.Msg)
		}
		return src, err
	}
	client, err := e.MoodleClient(site)
	if err != nil {
		return nil, fmt.Errorf("building the web-service client: %w", err)
	}
	// The warehouse lets the source record the site's fingerprint; which
	// scopes raw holds it asks the loader's writers (extract.ScopeLister).
	pool, err := e.Warehouse(ctx)
	if err != nil {
		return nil, err
	}
	src, err := moodlex.New(client, wire.MoodleSite(site), opts, moodlex.WithWarehouse(pool), moodlex.WithLogger(e.logger()))
	if errors.As(err, &se) {
		return nil, Usagef("%s", se.Msg)
	}
	return src, err
}

// SourceKind splits a source name into its kind and instance: "moodle:main"
// is kind moodle, instance main; "sits" is kind sits, instance sits (the
// EntityID.Source and EntityID.Instance its entities carry).
func SourceKind(name string) (kind, instance string) {
	kind, instance, ok := strings.Cut(name, ":")
	if !ok {
		instance = kind
	}
	return kind, instance
}

// ConfiguredSources lists the source names the configuration defines, in
// extraction order: SITS, CMIS, then the Moodle sites as configured.
func ConfiguredSources(cfg *config.Config) []string {
	var names []string
	if cfg.Sources.SITS != nil {
		names = append(names, "sits")
	}
	if cfg.Sources.CMIS != nil {
		names = append(names, "cmis")
	}
	for _, m := range cfg.Moodle {
		names = append(names, "moodle:"+m.Name)
	}
	return names
}

// OpenSource builds the named source, or says why it cannot.
func OpenSource(ctx context.Context, e *Env, name string, opts extract.Options) (extract.Source, error) {
	known := ConfiguredSources(e.Config)
	found := false
	for _, n := range known {
		found = found || n == name
	}
	if !found {
		return nil, Usagef("source %q is not configured (configured: %s)", name, strings.Join(known, ", "))
	}
	kind, _ := SourceKind(name)
	kinds := e.sources()
	open := kinds[kind]
	if open == nil {
		var names []string
		for k := range kinds {
			names = append(names, k)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("source kind %q is not built into this binary (available: %s)", kind, strings.Join(names, ", "))
	}
	return open(ctx, e, name, opts)
}
