package feeds

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/export/deliver"
	"github.com/mimwarehouse/mim/export/ims"
)

// IMSTiming is one site's full IMS export (every active membership
// re-asserted, as --full) timed three ways, each on its own REPEATABLE READ
// snapshot that is rolled back: nothing is published, archived or recorded.
type IMSTiming struct {
	Site    string
	Members int64 // memberships in the file
	Bytes   int64 // the file's size
	// Plan is building and measuring the delta (temporary tables, counts,
	// guard figures): the start of every way below.
	Plan time.Duration
	// Query is the plan and the file's rows read (and kept in memory for
	// Writer): the physical reference the writing is compared with.
	Query time.Duration
	// Write is the plan and the rows written by ims.Writer to a temporary
	// file, synced and renamed, without the check.
	Write time.Duration
	// Export is the plan and the file written and checked by ims.Validate
	// before the rename, exactly as the export writes it.
	Export time.Duration
	// Writer is the writer alone: the rows the query read, held in memory,
	// written by ims.Writer to a file that is synced and renamed.
	Writer time.Duration
}

// MeasureIMS times site's full IMS export from the marts as they are
// (see IMSTiming), writing its files in dir, which it leaves empty. It is
// the IMS figure of `mim bench`.
func MeasureIMS(ctx context.Context, pool *pgxpool.Pool, cfg *Config, site, dir string) (*IMSTiming, error) {
	s, ok := cfg.site(site)
	if !ok {
		return nil, fmt.Errorf("measuring the IMS export: no site %q in the configuration", site)
	}
	c := *cfg
	c.Deliver.Dir = dir
	x := New(pool, &c)
	t := &IMSTiming{Site: site}
	path := x.siteFile(IMSFileName(site))
	// Each way runs on a fresh snapshot, with the plan it needs.
	timed := func(body func(tx pgx.Tx, p *imsPlan) error) (time.Duration, error) {
		// A file replacing one of the same second would wait for the next
		// second (Moodle's mtime rule): start from none.
		_ = os.Remove(path)
		defer os.Remove(path)
		start := time.Now()
		tx, err := x.begin(ctx)
		if err != nil {
			return 0, err
		}
		defer rollback(ctx, tx)
		p, err := planIMS(ctx, tx, &c, s, true)
		if err != nil {
			return 0, err
		}
		t.Plan = time.Since(start)
		err = body(tx, p)
		return time.Since(start), err
	}
	var err error
	var held []deltaMember
	t.Query, err = timed(func(tx pgx.Tx, _ *imsPlan) error {
		return scanDelta(ctx, tx, nil, func(d deltaMember) error { held = append(held, d); return nil })
	})
	if err != nil {
		return nil, fmt.Errorf("measuring the IMS query of site %s: %w", site, err)
	}
	t.Write, err = timed(func(tx pgx.Tx, p *imsPlan) error {
		f, err := deliver.WriteFile(ctx, path, func(w io.Writer) error {
			iw := ims.NewWriter(w)
			if err := iw.WriteProperties(ims.Properties{Target: s.IMSTarget, DataSource: "mim bench", Type: "full", DateTime: x.now()}); err != nil {
				return err
			}
			if err := streamMembers(ctx, tx, iw, p.heldCourses(), &skipSet{}, nil); err != nil {
				return err
			}
			if err := iw.Close(); err != nil {
				return err
			}
			t.Members = int64(iw.Stats().Members)
			return nil
		})
		t.Bytes = f.Size
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("measuring the IMS writing of site %s: %w", site, err)
	}
	_ = os.Remove(path)
	start := time.Now()
	if _, err := deliver.WriteFile(ctx, path, func(w io.Writer) error { return writeHeld(w, s.IMSTarget, held) }); err != nil {
		return nil, fmt.Errorf("measuring the IMS writer of site %s: %w", site, err)
	}
	t.Writer = time.Since(start)
	_ = os.Remove(path)
	t.Export, err = timed(func(tx pgx.Tx, p *imsPlan) error {
		_, err := x.writeIMS(ctx, tx, 0, p, true, &skipSet{}, &Result{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("measuring the IMS export of site %s: %w", site, err)
	}
	return t, nil
}

// writeHeld writes members already in memory, as the export writes them.
func writeHeld(w io.Writer, target string, held []deltaMember) error {
	iw := ims.NewWriter(w)
	if err := iw.WriteProperties(ims.Properties{Target: target, DataSource: "mim bench", Type: "full", DateTime: time.Now()}); err != nil {
		return err
	}
	each := func(fn func(deltaMember) error) error {
		for _, d := range held {
			if err := fn(d); err != nil {
				return err
			}
		}
		return nil
	}
	if err := writeMembers(iw, each, &skipSet{}, nil); err != nil {
		return err
	}
	return iw.Close()
}
