package wire

import (
	"slices"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/mapping"
)

// Knowledge is what a mapping is checked against: the configured sites and
// the roles exports.ims_roles knows (sorted).
func Knowledge(cfg *config.Config) mapping.Knowledge {
	var k mapping.Knowledge
	for _, m := range cfg.Moodle {
		k.Sites = append(k.Sites, m.Name)
	}
	for r := range cfg.Exports.IMSRoles {
		k.Roles = append(k.Roles, r)
	}
	slices.Sort(k.Roles)
	return k
}
