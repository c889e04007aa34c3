package feeds

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/internal/mapping"
)

// Previewer shows what the next export would send, inside a caller's
// transaction: the rollover's dry run rebuilds the marts in a transaction it
// rolls back and asks it there (mapping.ExportPreviewer).
type Previewer struct {
	cfg *Config
}

// NewPreviewer returns the export preview of the exporter set up with cfg.
func NewPreviewer(cfg *Config) *Previewer { return &Previewer{cfg: cfg} }

// PreviewExport plans the IMS delta and the tutor table of every configured
// site inside tx. It creates temporary tables only (dropped before it
// returns) and spends nothing.
func (p *Previewer) PreviewExport(ctx context.Context, tx pgx.Tx) ([]mapping.ExportPreview, error) {
	var out []mapping.ExportPreview
	for i := range p.cfg.Sites {
		site := &p.cfg.Sites[i]
		plan, err := planIMS(ctx, tx, p.cfg, site, false)
		switch {
		case errors.Is(err, errNoMart):
			out = append(out, mapping.ExportPreview{Instance: site.Name, Feed: string(IMS),
				Decision: MembershipMart + " has not been built"})
		case err != nil:
			return nil, err
		default:
			held, err := plan.heldRows(ctx, tx)
			if err != nil {
				return nil, err
			}
			c := plan.counts
			decisions := append([]string{plan.check.Describe(wouldDecide(plan.check, plan.settings.Override))}, plan.holdDecisions(wouldHold(plan.settings.CourseDropOverride))...)
			if c.Frozen > 0 {
				decisions = append(decisions, fmt.Sprintf("%d memberships in %d frozen courses left as they are", c.Frozen, c.FrozenCourses))
			}
			out = append(out, mapping.ExportPreview{Instance: site.Name, Feed: string(IMS), Adds: c.Adds,
				Drops: c.Drops + c.Suspends - held, Changes: c.Changes, SampleDrops: plan.sampleDrops,
				Decision: strings.Join(decisions, "; ")})
		}
		tp, check, s, err := planTutor(ctx, tx, site)
		switch {
		case errors.Is(err, errNoMart):
		case err != nil:
			return nil, err
		default:
			out = append(out, mapping.ExportPreview{Instance: site.Name, Feed: string(Tutor), Adds: tp.Added, Drops: tp.Removed,
				Decision: check.Describe(wouldDecide(check, s.Override))})
		}
	}
	for _, t := range []string{"mim_ims_delta", "mim_ims_target", "mim_tutor_new"} {
		if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS pg_temp.`+t); err != nil {
			return nil, fmt.Errorf("previewing the export: %w", err)
		}
	}
	return out, nil
}
