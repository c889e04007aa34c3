package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/export/deliver"
	"github.com/mimwarehouse/mim/export/feeds"
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

// MeasureIMS times site's full IMS export from the marts as they are (see
// IMSTiming), with the exporter set up by cfg, writing its files in dir,
// which it leaves empty. It is the IMS figure of `mim bench`.
func MeasureIMS(ctx context.Context, pool *pgxpool.Pool, cfg *feeds.Config, site, dir string) (*IMSTiming, error) {
	c := *cfg
	c.Deliver.Dir = dir
	var target string
	for _, s := range c.Sites {
		if s.Name == site {
			target = s.IMSTarget
		}
	}
	x := feeds.New(pool, &c)
	t := &IMSTiming{Site: site}
	path := filepath.Join(dir, feeds.IMSFileName(site))
	// Each way runs on a fresh snapshot, with the plan it needs.
	timed := func(body func(f *feeds.FullIMS) error) (time.Duration, error) {
		// A file replacing one of the same second would wait for the next
		// second (Moodle's mtime rule): start from none.
		_ = os.Remove(path)
		defer os.Remove(path)
		start := time.Now()
		f, err := x.PlanFullIMS(ctx, site)
		if err != nil {
			return 0, err
		}
		defer f.Close(ctx)
		t.Plan = time.Since(start)
		err = body(f)
		return time.Since(start), err
	}
	var err error
	var held *feeds.IMSRows
	t.Query, err = timed(func(f *feeds.FullIMS) error {
		held, err = f.Read(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("measuring the IMS query of site %s: %w", site, err)
	}
	t.Write, err = timed(func(f *feeds.FullIMS) error {
		file, err := deliver.WriteFile(ctx, path, func(w io.Writer) error {
			return writeIMS(w, target, func(iw *ims.Writer) error { return f.Stream(ctx, iw) }, &t.Members)
		})
		t.Bytes = file.Size
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("measuring the IMS writing of site %s: %w", site, err)
	}
	_ = os.Remove(path)
	start := time.Now()
	if _, err := deliver.WriteFile(ctx, path, func(w io.Writer) error {
		return writeIMS(w, target, func(iw *ims.Writer) error { return feeds.WriteIMSRows(iw, held) }, nil)
	}); err != nil {
		return nil, fmt.Errorf("measuring the IMS writer of site %s: %w", site, err)
	}
	t.Writer = time.Since(start)
	_ = os.Remove(path)
	t.Export, err = timed(func(f *feeds.FullIMS) error { return f.Export(ctx) })
	if err != nil {
		return nil, fmt.Errorf("measuring the IMS export of site %s: %w", site, err)
	}
	return t, nil
}

// writeIMS writes a full IMS file for target to w, its members by members,
// and counts them into *n when n is not nil.
func writeIMS(w io.Writer, target string, members func(iw *ims.Writer) error, n *int64) error {
	iw := ims.NewWriter(w)
	if err := iw.WriteProperties(ims.Properties{Target: target, DataSource: "mim bench", Type: "full", DateTime: time.Now()}); err != nil {
		return err
	}
	if err := members(iw); err != nil {
		return err
	}
	if err := iw.Close(); err != nil {
		return err
	}
	if n != nil {
		*n = int64(iw.Stats().Members)
	}
	return nil
}
