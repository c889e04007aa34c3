// Package martconfig copies the parts of the configuration the marts must
// agree with into the warehouse, inside the transform's transaction: each
// Moodle site's group prefix and main authentication (ctl.config_site), the
// IMS roletype of each MIM role (ctl.config_ims_role, from exports.ims_roles)
// and the merge list's keep rules (ctl.config_merge_keep, from
// exports.merge.keep). The SQL models
// read those tables, so what the marts compute is what the exports will
// write with the same configuration.
package martconfig

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/transform"
)

// HookName is the name of the hook in the transform's report and ledger.
const HookName = "configuration for the marts"

// Hook returns the transform hook that runs Write after staging, before the
// intermediate models read the tables.
func Hook(cfg *config.Config) transform.Hook {
	return transform.Hook{
		Name:  HookName,
		After: "staging",
		Run: func(ctx context.Context, tx pgx.Tx) (string, error) {
			return Write(ctx, tx, cfg)
		},
	}
}

// Write replaces the rows of ctl.config_site and ctl.config_ims_role with
// the configuration's sites and roles, in tx, and says what it wrote. A
// configuration with no sites leaves ctl.config_site empty (the marts then
// use the default prefix).
func Write(ctx context.Context, tx pgx.Tx, cfg *config.Config) (string, error) {
	if _, err := tx.Exec(ctx, `DELETE FROM ctl.config_site`); err != nil {
		return "", fmt.Errorf("writing ctl.config_site: %w", err)
	}
	for _, s := range cfg.Moodle {
		if _, err := tx.Exec(ctx, `INSERT INTO ctl.config_site (instance, group_prefix, main_auth) VALUES ($1, $2, NULLIF($3, ''))`,
			s.Name, s.GroupPrefix, s.MainAuth); err != nil {
			return "", fmt.Errorf("writing ctl.config_site for site %s (group_prefix %q): %w", s.Name, s.GroupPrefix, err)
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM ctl.config_ims_role`); err != nil {
		return "", fmt.Errorf("writing ctl.config_ims_role: %w", err)
	}
	roles := make([]string, 0, len(cfg.Exports.IMSRoles))
	for r := range cfg.Exports.IMSRoles {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		code := cfg.Exports.IMSRoles[r]
		if _, err := tx.Exec(ctx, `INSERT INTO ctl.config_ims_role (role, roletype) VALUES ($1, $2)`, r, code); err != nil {
			return "", fmt.Errorf("writing ctl.config_ims_role: exports.ims_roles.%s %q: %w", r, code, err)
		}
	}
	keep := cfg.Exports.Merge.Keep
	if len(keep) == 0 {
		keep = config.DefaultMergeKeep
	}
	if _, err := tx.Exec(ctx, `DELETE FROM ctl.config_merge_keep`); err != nil {
		return "", fmt.Errorf("writing ctl.config_merge_keep: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ctl.config_merge_keep (position, rule) SELECT p, r FROM unnest($1::text[]) WITH ORDINALITY AS k(r, p)`,
		keep); err != nil {
		return "", fmt.Errorf("writing ctl.config_merge_keep: exports.merge.keep %v: %w", keep, err)
	}
	return fmt.Sprintf("%d sites, %d IMS roles, %d merge keep rules", len(cfg.Moodle), len(roles), len(keep)), nil
}
