package app

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/config"
)

// SourceOpener builds one configured source for `mim extract` and `mim run`.
// name is the full source name ("sits", "cmis", "moodle:main"); opts carry
// the operator's entity filter and the progress display.
type SourceOpener func(ctx context.Context, e *Env, cfg *config.Config, name string, opts extract.Options) (extract.Source, error)

// Sources is every source kind this binary can open, by kind: the
// relational SITS and CMIS, and Moodle sites. `mim extract` and `mim run`
// open the configured sources through Env.Sources, which defaults to this.
func Sources() map[string]SourceOpener {
	return map[string]SourceOpener{
		"sits":   openSITS,
		"cmis":   openCMIS,
		"moodle": openMoodleSource,
	}
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
	cfg, err := e.Config()
	if err != nil {
		return nil, err
	}
	known := ConfiguredSources(cfg)
	found := false
	for _, n := range known {
		found = found || n == name
	}
	if !found {
		return nil, Usagef("source %q is not configured (configured: %s)", name, strings.Join(known, ", "))
	}
	kind, _, _ := strings.Cut(name, ":")
	kinds := e.Sources
	if kinds == nil {
		kinds = Sources()
	}
	open := kinds[kind]
	if open == nil {
		var names []string
		for k := range kinds {
			names = append(names, k)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("source kind %q is not built into this binary (available: %s)", kind, strings.Join(names, ", "))
	}
	return open(ctx, e, cfg, name, opts)
}
