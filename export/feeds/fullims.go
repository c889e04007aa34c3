package feeds

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/export/ims"
)

// FullIMS is one site's full IMS export (every active membership
// re-asserted, as --full) planned on a REPEATABLE READ snapshot of its own,
// which Close rolls back: nothing it does is published, archived or
// recorded. Its steps are the export's own, one at a time, so that
// `mim bench` (internal/bench) can time each.
type FullIMS struct {
	x    *Exporter
	tx   pgx.Tx
	plan *imsPlan
}

// PlanFullIMS begins a snapshot and plans site's full IMS export in it:
// the delta's temporary tables, counts and guard figures.
func (x *Exporter) PlanFullIMS(ctx context.Context, site string) (*FullIMS, error) {
	s, ok := x.cfg.site(site)
	if !ok {
		return nil, &UnknownSiteError{Name: site}
	}
	tx, err := x.begin(ctx)
	if err != nil {
		return nil, err
	}
	p, err := planIMS(ctx, tx, x.cfg, s, true)
	if err != nil {
		rollback(ctx, tx)
		return nil, err
	}
	return &FullIMS{x: x, tx: tx, plan: p}, nil
}

// Close rolls the snapshot back.
func (f *FullIMS) Close(ctx context.Context) { rollback(ctx, f.tx) }

// IMSRows are the rows of an IMS file read into memory.
type IMSRows struct{ rows []deltaMember }

// Len is how many rows there are.
func (r *IMSRows) Len() int { return len(r.rows) }

// Read reads the file's rows into memory: the export's query alone.
func (f *FullIMS) Read(ctx context.Context) (*IMSRows, error) {
	out := &IMSRows{}
	err := scanDelta(ctx, f.tx, nil, func(d deltaMember) error { out.rows = append(out.rows, d); return nil })
	return out, err
}

// Stream writes the file's members to iw as the query returns them (the
// caller writes the properties before and closes iw after).
func (f *FullIMS) Stream(ctx context.Context, iw *ims.Writer) error {
	return streamMembers(ctx, f.tx, iw, f.plan.heldCourses(), &skipSet{}, nil)
}

// Export writes the site's file into the export directory exactly as the
// export writes it (checked by ims.Validate before the rename), publishing
// nothing.
func (f *FullIMS) Export(ctx context.Context) error {
	_, err := f.x.writeIMS(ctx, f.tx, 0, f.plan, true, &skipSet{}, &Result{})
	return err
}

// WriteIMSRows writes rows already read to iw as the export writes them
// (the caller writes the properties before and closes iw after).
func WriteIMSRows(iw *ims.Writer, rows *IMSRows) error {
	each := func(fn func(deltaMember) error) error {
		for _, d := range rows.rows {
			if err := fn(d); err != nil {
				return err
			}
		}
		return nil
	}
	return writeMembers(iw, each, &skipSet{}, nil)
}
