package feeds

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/export/deliver"
	"github.com/mimwarehouse/mim/export/flatfile"
	"github.com/mimwarehouse/mim/export/ims"
)

// FlatfileName is the name of a site's flat file in exports.dir and where
// it is delivered: the site's enrol_flatfile location must name it.
func FlatfileName(site string) string { return "enrolments-" + site + ".txt" }

// UnreadError is a flat file still waiting where it was delivered: Moodle's
// task deletes the file once it has read it, so overwriting it would lose
// its commands. Nothing is written; the changes stay unpublished and go out
// with the next file.
type UnreadError struct {
	Site, File, Target string
}

func (e *UnreadError) Error() string {
	return fmt.Sprintf("the last flat file %s of site %s is still at %s: Moodle's enrol_flatfile task has not read it yet "+
		"(it deletes the file when it has); not overwritten, its changes and this run's go out with the next file once it is gone",
		e.File, e.Site, e.Target)
}

// flatfileRoles maps IMS roletype codes back to the MIM role names, which
// are the Moodle role shortnames enrol_flatfile takes by default. The
// configuration makes sure no two roles share a code for a flat-file site.
func flatfileRoles(imsRoles map[string]string) map[string]string {
	out := make(map[string]string, len(imsRoles))
	for name, code := range imsRoles {
		out[code] = name
	}
	return out
}

// writeFlatfile writes the site's delta (the same plan as its IMS file
// would carry) as enrol_flatfile lines: add for adds, date changes and
// (with --full) unchanged memberships, del for drops and suspensions.
// Dates become the site's midnights: the first day's start, and the start of
// the day after the last day.
func (x *Exporter) writeFlatfile(ctx context.Context, tx pgx.Tx, runID int64, p *imsPlan, skipped *skipSet, res *Result) (deliver.File, error) {
	site := p.site
	name := FlatfileName(site.Name)
	t, err := x.deliverTarget(ctx)
	if err != nil {
		return deliver.File{}, err
	}
	c, ok := t.(deliver.Consumer)
	if !ok {
		return deliver.File{}, fmt.Errorf("the delivery target %s cannot tell whether Moodle has read the last flat file", t)
	}
	waiting, err := c.Exists(ctx, name)
	if err != nil {
		return deliver.File{}, err
	}
	if waiting {
		return deliver.File{}, &UnreadError{Site: site.Name, File: name, Target: t.String()}
	}
	roles := flatfileRoles(x.cfg.IMSRoles)
	loc := site.location()
	midnight := func(d ims.Date, days int) time.Time {
		if d.Year == 0 {
			return time.Time{}
		}
		return time.Date(d.Year, d.Month, d.Day+days, 0, 0, 0, 0, loc)
	}
	var stats flatfile.Stats
	write := func(w io.Writer) error {
		fw := flatfile.NewWriter(w)
		err := scanDelta(ctx, tx, p.heldCourses(), func(d deltaMember) error {
			l := flatfile.Line{Op: flatfile.Del, Role: roles[d.m.RoleType], User: d.m.IDNumber, Course: d.course}
			if d.m.Active {
				l.Op, l.Start, l.End = flatfile.Add, midnight(d.m.Begin, 0), midnight(d.m.LastDay, 1)
			}
			if l.Role == "" {
				l.Role = "?"
			}
			if err := fw.Write(l); err != nil {
				if !flatfile.IsFieldError(err) {
					return err
				}
				skipped.add(d.course, d.m.IDNumber, d.m.RoleType, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := fw.Close(); err != nil {
			return err
		}
		stats = fw.Stats()
		return ctx.Err()
	}
	verify := func(r io.Reader) error {
		got, err := flatfile.Validate(r)
		if err != nil {
			return err
		}
		if got != stats {
			return fmt.Errorf("the file holds %d adds and %d dels, the writer wrote %d and %d", got.Adds, got.Dels, stats.Adds, stats.Dels)
		}
		return nil
	}
	f, err := deliver.WriteFile(ctx, x.siteFile(name), write, deliver.Verify(verify))
	if err != nil {
		return f, fmt.Errorf("writing the flat file of site %s: %w", site.Name, err)
	}
	if skipped.n > 0 {
		res.Skipped = skipped.n
		res.LeftOut = append(res.LeftOut, skipped.all...)
		res.note("%s refused by the writer and left as published (every one is listed in left_out), e.g. %s",
			plural(skipped.n, "line", "lines"), joinShort(skipped.all, 3))
	}
	return f, nil
}
