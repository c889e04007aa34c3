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
)

// HookName is the name of the transform hook that runs Write (wire.MartConfigHook) in the
// transform's report and ledger.
const HookName = "configuration for the marts"

// Options are the parts of the configuration the marts must agree with.
type Options struct {
	// Sites are the Moodle sites, in the configuration's order.
	Sites []Site
	// IMSRoles maps MIM roles to IMS roletype codes (exports.ims_roles).
	IMSRoles map[string]string
	// MergeKeep are the merge list's keep rules in order (exports.merge.keep).
	MergeKeep []string
}

// Site is what the marts must know of a Moodle site.
type Site struct {
	Name string
	// GroupPrefix marks the idnumbers of the groups MIM owns.
	GroupPrefix string
	// MainAuth is the authentication students log in with ("" : the
	// marts take the most common one).
	MainAuth string
}

// Write replaces the rows of ctl.config_site, ctl.config_ims_role and
// ctl.config_merge_keep with o's sites, roles and keep rules, in tx, and
// says what it wrote. No sites leave ctl.config_site empty (the marts then
// use the default prefix).
func Write(ctx context.Context, tx pgx.Tx, o Options) (string, error) {
	if _, err := tx.Exec(ctx, `DELETE FROM ctl.config_site`); err != nil {
		return "", fmt.Errorf("writing ctl.config_site: %w", err)
	}
	for _, s := range o.Sites {
		if _, err := tx.Exec(ctx, `INSERT INTO ctl.config_site (instance, group_prefix, main_auth) VALUES ($1, $2, NULLIF($3, ''))`,
			s.Name, s.GroupPrefix, s.MainAuth); err != nil {
			return "", fmt.Errorf("writing ctl.config_site for site %s (group_prefix %q): %w", s.Name, s.GroupPrefix, err)
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM ctl.config_ims_role`); err != nil {
		return "", fmt.Errorf("writing ctl.config_ims_role: %w", err)
	}
	roles := make([]string, 0, len(o.IMSRoles))
	for r := range o.IMSRoles {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		code := o.IMSRoles[r]
		if _, err := tx.Exec(ctx, `INSERT INTO ctl.config_ims_role (role, roletype) VALUES ($1, $2)`, r, code); err != nil {
			return "", fmt.Errorf("writing ctl.config_ims_role: exports.ims_roles.%s %q: %w", r, code, err)
		}
	}
	keep := o.MergeKeep
	if _, err := tx.Exec(ctx, `DELETE FROM ctl.config_merge_keep`); err != nil {
		return "", fmt.Errorf("writing ctl.config_merge_keep: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ctl.config_merge_keep (position, rule) SELECT p, r FROM unnest($1::text[]) WITH ORDINALITY AS k(r, p)`,
		keep); err != nil {
		return "", fmt.Errorf("writing ctl.config_merge_keep: exports.merge.keep %v: %w", keep, err)
	}
	return fmt.Sprintf("%d sites, %d IMS roles, %d merge keep rules", len(o.Sites), len(roles), len(keep)), nil
}
