package app

import (
	"log/slog"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/coursemap"
	"github.com/mimwarehouse/mim/internal/lti"
	"github.com/mimwarehouse/mim/internal/wire"
	"github.com/mimwarehouse/mim/transform"
)

// NewLTITool builds the course staff's LTI tool from the configuration
// (nil when lti.url is not set).
func NewLTITool(cfg *config.Config, pool *pgxpool.Pool, logger *slog.Logger) (*lti.Tool, error) {
	if !cfg.LTI.Enabled() {
		return nil, nil
	}
	key, err := lti.LoadKey(cfg.LTI.KeyFile)
	if err != nil {
		return nil, err
	}
	return newLTITool(cfg, pool, logger, lti.Options{Key: key})
}

// NewCourseEditor is what previews and makes staff changes to a course's
// mappings: the transform's models scoped to the course, and the export's
// preview of it.
func NewCourseEditor(cfg *config.Config, pool *pgxpool.Pool) (*coursemap.Service, error) {
	project, err := transform.LoadEmbedded()
	if err != nil {
		return nil, err
	}
	return coursemap.New(pool, coursemap.Options{Knowledge: wire.Knowledge(cfg), Project: project, Export: feeds.NewPreviewer(wire.Feeds(cfg))}), nil
}

// newLTITool wires the tool: opts carries what is not in the configuration
// (the key; tests add a clock).
func newLTITool(cfg *config.Config, pool *pgxpool.Pool, logger *slog.Logger, opts lti.Options) (*lti.Tool, error) {
	editor, err := NewCourseEditor(cfg, pool)
	if err != nil {
		return nil, err
	}
	k := wire.Knowledge(cfg)
	opts.URL, opts.Roles, opts.Session, opts.Logger = cfg.LTI.URL, k.Roles, cfg.LTI.Session, logger
	for _, m := range cfg.Moodle {
		if slices.Contains(cfg.LTI.Sites, m.Name) {
			opts.Sites = append(opts.Sites, lti.Site{Name: m.Name, Issuer: m.Issuer()})
		}
	}
	return lti.New(pool, editor, opts)
}
