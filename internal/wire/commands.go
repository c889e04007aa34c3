package wire

import (
	"log/slog"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/internal/catalog"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/coursemap"
	"github.com/mimwarehouse/mim/internal/lti"
	"github.com/mimwarehouse/mim/transform"
)

// LTITool builds the course staff's LTI tool from the configuration, its
// key read from lti.key_file (nil when lti.url is not set).
func LTITool(cfg *config.Config, pool *pgxpool.Pool, logger *slog.Logger) (*lti.Tool, error) {
	if !cfg.LTI.Enabled() {
		return nil, nil
	}
	key, err := lti.LoadKey(cfg.LTI.KeyFile)
	if err != nil {
		return nil, err
	}
	return LTIToolWith(cfg, pool, logger, lti.Options{Key: key})
}

// CourseEditor is what previews and makes staff changes to a course's
// mappings: the transform's models scoped to the course, and the export's
// preview of it.
func CourseEditor(cfg *config.Config, pool *pgxpool.Pool) (*coursemap.Service, error) {
	project, err := transform.LoadEmbedded()
	if err != nil {
		return nil, err
	}
	return coursemap.New(pool, coursemap.Options{Knowledge: Knowledge(cfg), Project: project, Export: feeds.NewPreviewer(Feeds(cfg))}), nil
}

// LTIToolWith wires the tool: opts carries what is not in the
// configuration (the key; tests add a clock).
func LTIToolWith(cfg *config.Config, pool *pgxpool.Pool, logger *slog.Logger, opts lti.Options) (*lti.Tool, error) {
	editor, err := CourseEditor(cfg, pool)
	if err != nil {
		return nil, err
	}
	k := Knowledge(cfg)
	opts.URL, opts.Roles, opts.Session, opts.Logger = cfg.LTI.URL, k.Roles, cfg.LTI.Session, logger
	for _, m := range cfg.Moodle {
		if slices.Contains(cfg.LTI.Sites, m.Name) {
			opts.Sites = append(opts.Sites, lti.Site{Name: m.Name, Issuer: m.Issuer()})
		}
	}
	return lti.New(pool, editor, opts)
}

// CatalogPublisher is the CKAN publisher catalog.* describes; with no
// catalog.url its client is nil (it can only list).
func CatalogPublisher(cfg *config.Config, logger *slog.Logger) (*catalog.Publisher, error) {
	p := &catalog.Publisher{Org: cfg.Catalog.Organization, Prefix: cfg.Catalog.DatasetPrefix, Environment: cfg.Environment, Logger: logger}
	if cfg.Catalog.URL != "" {
		c, err := catalog.NewClient(cfg.Catalog.URL, cfg.Catalog.APIKey)
		if err != nil {
			return nil, err
		}
		p.Client = c
	}
	return p, nil
}
