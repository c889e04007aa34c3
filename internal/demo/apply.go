package demo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/export/flatfile"
	"github.com/mimwarehouse/mim/export/merge"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// applyIMS runs each site's IMS Enterprise task on the file the export
// wrote, as Moodle's scheduled task would.
func (d *demo) applyIMS() {
	for _, s := range d.in.Sites {
		site, _ := d.cfg.Site(s.Name)
		path := filepath.Join(d.out, feeds.IMSFileName(s.Name))
		if _, err := os.Stat(path); err != nil {
			fmt.Fprintf(d.w, "%-10s no IMS file (%s)\n", s.Name, filepath.Base(path))
			continue
		}
		cron := d.sims[s.Name].IMSCron(moodletest.IMSSettings{RestrictTarget: site.IMSTarget, Unenrol: true})
		rep, err := cron.Run(path)
		if err != nil {
			fmt.Fprintf(d.w, "%-10s the IMS task failed: %v\n", s.Name, err)
			continue
		}
		if rep.Skipped != "" {
			fmt.Fprintf(d.w, "%-10s %s\n", s.Name, rep.Skipped)
			continue
		}
		fmt.Fprintf(d.w, "%-10s enrolled %d, dates changed %d, unenrolled %d, suspended %d; unknown courses %d, unknown users %d\n",
			s.Name, rep.Enrolled, rep.DatesChanged, rep.Unenrolled, rep.Suspended, rep.UnknownCourses, rep.UnknownUsers)
	}
}

// applyProfiles runs each site's bulk user upload on the profile CSV the
// export wrote, as a site's cron job running tool_uploaduser would.
func (d *demo) applyProfiles() {
	for _, s := range d.in.Sites {
		f, err := os.Open(filepath.Join(d.out, feeds.ProfileFileName(s.Name)))
		if err != nil {
			continue // no profile CSV for this site
		}
		rep, err := d.sims[s.Name].UploadUsers(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(d.w, "%-10s the profile upload failed: %v\n", s.Name, err)
			continue
		}
		fmt.Fprintf(d.w, "%-10s profile values of %d accounts updated; %d usernames not on the site\n", s.Name, rep.Updated, rep.Skipped)
	}
}

// applyMerges runs each site's tool_mergeusers with MIM's gathering on the
// merge list the night's export wrote, as the site's cron job would
// (docs/moodle-side.md): the next night sees the merges done, proposes none
// again and moves the student codes to the kept accounts.
func (d *demo) applyMerges(runID int64) {
	for _, s := range d.in.Sites {
		f, err := os.Open(filepath.Join(d.out, merge.FileName(s.Name, runID)))
		if err != nil {
			continue // no merge list for this site tonight
		}
		rep, err := d.sims[s.Name].RunMergeList(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(d.w, "%-10s tool_mergeusers refused the merge list: %v\n", s.Name, err)
			continue
		}
		fmt.Fprintf(d.w, "%-10s tool_mergeusers merged %d pairs of the merge list, refused %d\n", s.Name, len(rep.Merged), len(rep.Refused))
	}
}

// flatfile shows the flat-file feed on the demo's first site: the
// configuration says the site takes its enrolments by flat file, and a full
// export re-asserts the whole target (the IMS file already told the site
// the same, so nothing it says is new) into out/flatfile/, checked as
// enrol_flatfile reads it.
func (d *demo) flatfile(ctx context.Context) error {
	if len(d.in.Sites) == 0 {
		return nil
	}
	c := *d.cfg
	c.Moodle = slices.Clone(d.cfg.Moodle)
	c.Exports.Dir = filepath.Join(d.out, "flatfile")
	site := &c.Moodle[0]
	site.EnrolmentFeed, site.Timezone = config.EnrolmentFlatfile, "Europe/London"
	sum, err := d.h.Export(ctx, &c, d.pool, []string{"demo", "export", "--full", "--feed", "flatfile"},
		feeds.Options{Full: true, Instances: []string{site.Name}, Feeds: []feeds.Feed{feeds.Flatfile}})
	if err != nil {
		return err
	}
	for _, r := range sum.Results {
		if r.Err != nil {
			return r.Err
		}
		data, err := os.ReadFile(filepath.Join(c.Exports.Dir, feeds.FlatfileName(site.Name)))
		if err != nil {
			return err
		}
		st, err := flatfile.Validate(bytes.NewReader(data))
		if err != nil {
			return err
		}
		first, _, _ := strings.Cut(string(data), "\n")
		fmt.Fprintf(d.w, "%-10s %s: %d add lines, %d del lines, checked as enrol_flatfile reads them (first: %s)\n",
			site.Name, filepath.Join("flatfile", feeds.FlatfileName(site.Name)), st.Adds, st.Dels, first)
	}
	return nil
}
