package feeds

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/export/guard"
)

// CoursePreview is what the next IMS export would do to one course, given
// a target for it: the course-scoped counterpart of the dry run, for the
// staff who change the course's mappings.
type CoursePreview struct {
	Instance, Course string
	// Frozen: every mapping of the course is inactive, so the export
	// leaves it exactly as it is.
	Frozen bool
	// Target is the course's active memberships in the new target.
	Target int64
	// The delta, as the export would classify it.
	Adds, Changes, Drops, Suspends int64
	// Quiet are role drops of users who keep another role (recorded, not sent).
	Quiet int64
	// Students are the course's active learners Moodle was told of.
	Students int64
	// Held: the per-course guard (course_drop) would hold the drops back,
	// for the integration team to review, while the adds go out.
	Held      bool
	HoldLimit int
	// HeldDrops are the drops and suspensions held.
	HeldDrops int64
	// SampleAdds and SampleDrops are the first users enrolled and unenrolled.
	SampleAdds, SampleDrops []Member
	// The site's threshold with this course's new target in place of its
	// current one (the rest of the site as the marts hold it now): what it
	// would decide (guard.Passed, guard.Refused, guard.Overridden when
	// threshold_override is set), the limit, and the shares of the last
	// successful export's active students and memberships kept. First: the
	// site has no successful export to compare with.
	Threshold                     string
	ThresholdLimit                int
	StudentsKept, MembershipsKept float64
	First                         bool
	// Causes is true when the threshold would pass without this change and
	// refuse with it: the change alone would stop the site's export.
	Causes bool
	// Decisions describe the guards' view, one line each.
	Decisions []string
}

// PreviewCourse is PreviewCourse with the previewer's configuration: the
// course editor's view of the export (coursemap.ExportPreviewer).
func (p *Previewer) PreviewCourse(ctx context.Context, tx pgx.Tx, site, course, target string) (*CoursePreview, error) {
	return PreviewCourse(ctx, tx, p.cfg, site, course, target)
}

// PreviewCourse computes, inside tx, what the next IMS export of site would
// do to course if the course's target were the rows of target (a relation
// with mart.exp_ims_membership's columns, such as transform.Evaluate's
// scoped build of it): adds, drops and changes against what Moodle was
// told, whether the per-course guard would hold the drops, and what the
// site's threshold would decide. It creates temporary tables only and
// spends nothing; ctl.course_mapping in tx decides whether the course is
// frozen.
func PreviewCourse(ctx context.Context, tx pgx.Tx, cfg *Config, site, course, target string) (*CoursePreview, error) {
	s, ok := cfg.site(site)
	if !ok {
		return nil, &UnknownSiteError{Name: site}
	}
	p := &imsPlan{site: s}
	var err error
	if p.settings, err = guard.ReadSettings(ctx, tx); err != nil {
		return nil, err
	}
	if err := p.delta(ctx, tx, cfg, imsScope{from: target, course: course}); err != nil {
		return nil, err
	}
	if err := p.measure(ctx, tx); err != nil {
		return nil, err
	}
	c := p.counts
	out := &CoursePreview{Instance: site, Course: course, Target: c.Memberships, Adds: c.Adds, Changes: c.Changes,
		Drops: c.Drops, Suspends: c.Suspends, Quiet: c.Quiet, HoldLimit: p.settings.CourseDropPercent}
	if err := tx.QueryRow(ctx, `SELECT count(*) > 0 AND NOT bool_or(active) FROM ctl.course_mapping
		WHERE instance = $1 AND course_idnumber = $2`, site, course).Scan(&out.Frozen); err != nil {
		return nil, fmt.Errorf("reading whether course %s is frozen: %w", course, err)
	}
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM ctl.published_membership
		WHERE instance = $1 AND course_idnumber = $2 AND roletype = $3 AND status = 1`, site, course, learner).Scan(&out.Students); err != nil {
		return nil, fmt.Errorf("counting the published students of course %s: %w", course, err)
	}
	if held := guard.Hold(p.losses, p.settings.CourseDropPercent); len(held) > 0 {
		out.Held = true
		p.held = held
		if out.HeldDrops, err = p.heldRows(ctx, tx); err != nil {
			return nil, err
		}
	}
	if out.SampleAdds, err = sampleUsers(ctx, tx, `kind = 'add'`); err != nil {
		return nil, err
	}
	if out.SampleDrops, err = sampleUsers(ctx, tx, `kind IN ('drop', 'suspend') AND NOT keeps`); err != nil {
		return nil, err
	}
	if err := out.threshold(ctx, tx, p, course); err != nil {
		return nil, err
	}
	if out.Frozen {
		out.Decisions = append(out.Decisions, "the course's mappings are all inactive: the export leaves its enrolments exactly as they are")
	}
	if out.Held {
		out.Decisions = append(out.Decisions, p.holdDecisions(wouldHold(p.settings.CourseDropOverride))...)
	}
	return out, nil
}

// threshold measures the site with this course's new target in place of
// the one the marts hold now, and without the change.
func (out *CoursePreview) threshold(ctx context.Context, tx pgx.Tx, p *imsPlan, course string) error {
	ok, err := martExists(ctx, tx, MembershipMart)
	if err != nil {
		return err
	}
	var now, with struct{ students, members int64 }
	if ok {
		// One pass over the site's learners: who is a learner elsewhere
		// than in this course stays one whatever the change does.
		err = tx.QueryRow(ctx, `
			WITH learner AS (
			    SELECT user_idnumber::text AS usr, bool_or(course_idnumber::text <> $2) AS elsewhere
			    FROM `+MembershipMart+` WHERE instance = $1 AND status = 1 AND roletype::text = $3 GROUP BY 1),
			     added AS (SELECT DISTINCT usr FROM mim_ims_target WHERE status = 1 AND roletype = $3),
			     member AS (
			    SELECT count(*) AS now, count(*) FILTER (WHERE course_idnumber::text <> $2) AS others
			    FROM `+MembershipMart+` WHERE instance = $1 AND status = 1)
			SELECT (SELECT count(*) FROM learner),
			       (SELECT count(*) FROM learner WHERE elsewhere)
			         + (SELECT count(*) FROM added a WHERE NOT EXISTS (SELECT 1 FROM learner l WHERE l.usr = a.usr AND l.elsewhere)),
			       (SELECT now FROM member),
			       (SELECT others FROM member) + (SELECT count(*) FROM mim_ims_target WHERE status = 1)`,
			p.site.Name, course, learner).Scan(&now.students, &with.students, &now.members, &with.members)
	} else {
		err = tx.QueryRow(ctx, `SELECT count(DISTINCT usr) FILTER (WHERE status = 1 AND roletype = $1), count(*) FILTER (WHERE status = 1)
			FROM mim_ims_target`, learner).Scan(&with.students, &with.members)
	}
	if err != nil {
		return fmt.Errorf("measuring site %s with course %s changed: %w", p.site.Name, course, err)
	}
	check := func(students, members int64) guard.Check {
		c := p.check
		c.Measures = []guard.Measure{
			{Subject: "active_students", Previous: c.Measures[0].Previous, Current: students},
			{Subject: "active_memberships", Previous: c.Measures[1].Previous, Current: members},
		}
		return c
	}
	after, before := check(with.students, with.members), check(now.students, now.members)
	out.Threshold, out.ThresholdLimit, out.First = after.Decide(p.settings.Override), after.Limit, after.First
	out.StudentsKept, out.MembershipsKept = after.Measures[0].Percent(), after.Measures[1].Percent()
	out.Causes = len(after.Breaches()) > 0 && len(before.Breaches()) == 0
	out.Decisions = append(out.Decisions, after.Describe(wouldDecide(after, p.settings.Override)))
	return nil
}

// Member is one user of a course in a delta.
type Member struct {
	User     string // the user idnumber
	Roletype string // the IMS roletype
}

// sampleUsers lists the first users of mim_ims_delta rows matching where.
func sampleUsers(ctx context.Context, tx pgx.Tx, where string) ([]Member, error) {
	rows, err := tx.Query(ctx, `SELECT usr, roletype FROM mim_ims_delta WHERE `+where+` ORDER BY roletype, usr LIMIT 10`)
	if err != nil {
		return nil, fmt.Errorf("listing the course's changes: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Member])
	if err != nil {
		return nil, fmt.Errorf("listing the course's changes: %w", err)
	}
	return out, nil
}
