package app

import (
	"context"
	"flag"

	"github.com/mimwarehouse/mim/export/feeds"
	"github.com/mimwarehouse/mim/internal/night"
)

var exportCommand = Command{
	Name:    "export",
	Group:   "Feeds and Moodle",
	Summary: "write the feeds for Moodle (IMS Enterprise or flat file, profile CSV, tutor table, merge list, OneRoster), guarded",
	Usage:   "mim export [--dry-run] [--full] [--instance NAME]... [--feed ims|flatfile|profile|tutor|merge|oneroster]...",
	Help: `For every configured Moodle site (or those named with --instance), reads the
marts and writes the feeds Moodle picks up:

  ims      ims-<site>.xml for enrol_imsenterprise: by default the delta against
           what Moodle was last told (ctl.published_membership): adds, date
           changes and explicit drops carrying the roletype the user was
           enrolled with; --full re-asserts every membership. Courses whose
           mappings are all inactive are frozen: nothing added or dropped.
  flatfile enrolments-<site>.txt for enrol_flatfile (and Open LMS Conduit), for
           a site with moodle[].enrolment_feed: flatfile instead of ims: the
           same delta, guards and recorded state as the IMS file, written as
           "add|del,role,user idnumber,course idnumber[,start,end]" lines with
           the site's midnights (moodle[].timezone). A file Moodle's task has
           not read yet (it deletes it when it has) is never overwritten: the
           feed fails, and its changes go with the next file.
  profile  profile-<site>.csv for tool_uploaduser (--uutype=3 --uuupdatetype=1):
           username and the exports.profile_fields columns, only accounts
           whose values changed since the last published file (all with --full).
           After a merge Moodle shows done, also the column idnumber: the
           student code cleared from the merged-away account, then given to
           the kept one (exports.merge.carry_idnumber).
  tutor    the site's rows of mim_export.personal_tutor, replaced in one
           transaction, read by enrol_dbuserrel through the view
           mim_export.personal_tutor_<site>.
  merge    merge-<site>-<run>.csv: pairs of accounts for tool_mergeusers (its
           CLI with the gathering in moodle-side/tool_mergeusers), keeping the
           account exports.merge.keep chooses, each with why and the evidence;
           every pair sent is recorded, and a merge Moodle shows done is never
           proposed again.
  oneroster oneroster-<site>.zip, OneRoster 1.2 CSV (manifest, orgs,
           academicSessions, courses, classes, users, roles, enrollments) of
           the site's target, for sites with moodle[].oneroster: bulk the first
           time and with --full, else a delta (active / tobedeleted rows)
           against what the last one sent.

Guards, before anything is written:
  - Environment: the site's configured environment, this deployment's and the
    warehouse's (ctl.deployment) must agree, or nothing is written for the site.
  - Threshold (the incumbent's rule): the new IMS target's active students and
    active memberships (the tutor table's rows and kept pairs) are compared
    with the last successful export of the site; below threshold_percent the
    feed is refused, a guard_event is recorded and, with threshold_send_email,
    mail goes to threshold_email (or notify.to). threshold_override lets one
    export through and is reset in the same transaction as that publish.
  - Per course: a course that would lose more than course_drop_percent of its
    students has its drops held back (listed, mailed, kept in
    ctl.published_membership) while the rest of the feed goes out; they are
    held at every export until the mapping is fixed or course_drop_percent
    is raised.
  - Student codes moved after merges: more than idnumber_carry_budget per
    site are held back (the rest of the profile CSV goes out) unless
    idnumber_carry_override is armed (with --reason; it lapses after the run).

Every file is written to a temporary name, checked (the IMS file is re-parsed
with an XML parser and checked line by line as Moodle reads it), renamed,
archived under exports.dir/archive with its SHA-256 and run id, delivered
(exports.deliver: a directory or sftp://, host key checked), and only then is
what Moodle was told recorded. A failure anywhere leaves the last file and the
recorded state as they were.

A site or feed that is refused or fails does not stop the others: they still
go out. --dry-run prints per site and feed the counts (adds, drops, changes,
held), the guards' decisions and the first drops, and writes nothing: no file,
no state, no guard event, no override spent.

Exit status: 0 every feed went out (or had nothing to send), 1 a feed failed,
3 a guard refused a feed (the others went out).`,
	Setup: func(fs *flag.FlagSet) Runner {
		dry := fs.Bool("dry-run", false, "compute and print what would be sent; write nothing")
		full := fs.Bool("full", false, "re-assert every membership (and every profile row) instead of the delta")
		var instances, feedNames []string
		fs.Func("instance", "only the Moodle site `NAME` (repeatable)", listFlag(&instances))
		fs.Func("feed", "only this `feed`: ims, flatfile, profile, tutor, merge or oneroster (repeatable)", listFlag(&feedNames))
		return func(ctx context.Context, e *Env, args []string) error {
			if len(args) != 0 {
				return Usagef("export takes no arguments")
			}
			opts := feeds.Options{DryRun: *dry, Full: *full, Instances: instances}
			for _, n := range feedNames {
				f, err := feeds.ParseFeed(n)
				if err != nil {
					return Usagef("--feed: %v", err)
				}
				opts.Feeds = append(opts.Feeds, f)
			}
			return runExport(ctx, e, opts)
		}
	},
}

func runExport(ctx context.Context, e *Env, opts feeds.Options) error {
	ne, err := nightEnv(e)
	if err != nil {
		return err
	}
	return usage(night.Export(ctx, ne, opts, func(sum *feeds.Summary) { sum.Write(e.Stdout) }))
}
