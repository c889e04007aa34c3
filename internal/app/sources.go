package app

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/config"
)

// SourceOpener builds one configured source for `mim extract` and `mim run`.
// name is the full source name ("sits", "cmis", "moodle:main"); opts carry
// the operator's entity filter and the progress display.
type SourceOpener func(ctx context.Context, e *Env, cfg *config.Config, name string, opts extract.Options) (extract.Source, error)

var (
	sourcesMu   sync.Mutex
	sourceKinds = map[string]SourceOpener{}
)

// RegisterSource makes a source kind ("sits", "cmis", "moodle") available;
// each kind registers itself from its own file.
func RegisterSource(kind string, open SourceOpener) {
	sourcesMu.Lock()
	defer sourcesMu.Unlock()
	if _, dup := sourceKinds[kind]; dup {
		panic("app: source kind registered twice: " + kind)
	}
	sourceKinds[kind] = open
}

// SwapSource installs open as the opener of kind, whether or not one is
// registered, and returns a function that puts back what was there. It lets
// a test or a demo stand a fixture in for a real source kind.
func SwapSource(kind string, open SourceOpener) (restore func()) {
	sourcesMu.Lock()
	defer sourcesMu.Unlock()
	old, had := sourceKinds[kind]
	sourceKinds[kind] = open
	return func() {
		sourcesMu.Lock()
		defer sourcesMu.Unlock()
		if had {
			sourceKinds[kind] = old
		} else {
			delete(sourceKinds, kind)
		}
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
	sourcesMu.Lock()
	open := sourceKinds[kind]
	sourcesMu.Unlock()
	if open == nil {
		var kinds []string
		for k := range sourceKinds {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		return nil, fmt.Errorf("source kind %q is not built into this binary (available: %s)", kind, strings.Join(kinds, ", "))
	}
	return open(ctx, e, cfg, name, opts)
}
