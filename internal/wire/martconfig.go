package wire

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/martconfig"
	"github.com/mimwarehouse/mim/transform"
)

// MartConfig is what the marts must agree with: each site's group prefix
// and main authentication, exports.ims_roles and exports.merge.keep (its
// default when a configuration built in code leaves it empty).
func MartConfig(cfg *config.Config) martconfig.Options {
	o := martconfig.Options{IMSRoles: cfg.Exports.IMSRoles, MergeKeep: cfg.Exports.Merge.Keep}
	if len(o.MergeKeep) == 0 {
		o.MergeKeep = config.DefaultMergeKeep
	}
	for _, s := range cfg.Moodle {
		o.Sites = append(o.Sites, martconfig.Site{Name: s.Name, GroupPrefix: s.GroupPrefix, MainAuth: s.MainAuth})
	}
	return o
}

// MartConfigHook is the transform hook that writes MartConfig(cfg) after
// staging, before the intermediate models read it.
func MartConfigHook(cfg *config.Config) transform.Hook {
	o := MartConfig(cfg)
	return transform.Hook{
		Name:  martconfig.HookName,
		After: "staging",
		Run: func(ctx context.Context, tx pgx.Tx) (string, error) {
			return martconfig.Write(ctx, tx, o)
		},
	}
}
