package feeds

import (
	"context"
	"fmt"
	"strings"

	"github.com/mimwarehouse/mim/export/guard"
)

// refuse records a threshold refusal (the feed's transaction is already
// rolled back: nothing was written), mails it and returns the refusal.
func (x *Exporter) refuse(ctx context.Context, runID int64, c guard.Check, feed Feed, s guard.Settings, res *Result) error {
	id, err := guard.Record(ctx, x.pool, guard.CheckEvent(runID, c, guard.Refused, string(feed)))
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString(strings.TrimSpace(s.Message))
	fmt.Fprintf(&b, "\n\nSite: %s\nFeed: %s\nRun: %d\n\n", c.Instance, feed, runID)
	writeMeasures(&b, c)
	fmt.Fprintf(&b, "\nNothing of this feed was written or delivered; Moodle keeps what it was last sent.\n"+
		"If the drop is expected, let one run through with:\n  %s\n", guard.OverrideHint(c.Guard))
	subject := fmt.Sprintf("%s [%s %s]", s.Subject, c.Instance, feed)
	x.send(ctx, s, guard.Notice{Subject: subject, Body: b.String(), Events: []int64{id}}, res)
	return guard.Refusal(c, string(feed))
}

// mailPublished tells the team that an export went out on an override,
// and which courses' drops were held back (or sent on course_drop_override).
func (x *Exporter) mailPublished(ctx context.Context, p *imsPlan, decision string, courses []guard.CourseLoss, holdDecision string, ids []int64, res *Result) {
	var b strings.Builder
	var subject string
	site := p.site.Name
	switch {
	case decision == guard.Overridden:
		subject = fmt.Sprintf("MIM threshold override used: the IMS export of %s went out despite the threshold", site)
		fmt.Fprintf(&b, "threshold_override was armed, so this export went out although it is below threshold_percent;\n"+
			"the override has lapsed.\n\nSite: %s\nExport: %d\n\n", site, res.ExportID)
		writeMeasures(&b, p.check)
		b.WriteString("\n")
	case holdDecision == guard.Overridden:
		subject = fmt.Sprintf("MIM course_drop_override used: held drops of %s of %s sent", plural(int64(len(courses)), "course", "courses"), site)
		fmt.Fprintf(&b, "Site: %s\nExport: %d\n\n", site, res.ExportID)
	default:
		subject = fmt.Sprintf("MIM export: drops held back in %s of %s", plural(int64(len(courses)), "course", "courses"), site)
		fmt.Fprintf(&b, "Site: %s\n\n", site)
	}
	if len(courses) > 0 {
		if holdDecision == guard.Overridden {
			fmt.Fprintf(&b, "These courses lose more than course_drop_percent (%d%%) of their students. course_drop_override was\n"+
				"armed, so their drops were sent this once and the override has lapsed:\n\n", p.settings.CourseDropPercent)
		} else {
			fmt.Fprintf(&b, "These courses would have lost more than course_drop_percent (%d%%) of their students, so their drops\n"+
				"were held back (Moodle keeps those enrolments; the rest of the feed went out). A wrong or changed\n"+
				"mapping is the usual cause. They are held again at every export until the mapping is fixed; if the\n"+
				"drops are confirmed, send them once with:\n  %s\n\n", p.settings.CourseDropPercent, guard.OverrideHint(guard.CourseDrop))
		}
		for _, h := range courses {
			fmt.Fprintf(&b, "  %s: %d of %d students (%.0f%%)\n", h.Course, h.Drops, h.Students, h.Percent())
			for _, d := range p.heldSample[h.Course] {
				fmt.Fprintf(&b, "      %s\n", d)
			}
		}
	}
	x.send(ctx, p.settings, guard.Notice{Subject: subject, Body: b.String(), Events: ids}, res)
}

func writeMeasures(b *strings.Builder, c guard.Check) {
	if c.First {
		b.WriteString("This is the site's first export: there is nothing to compare with.\n")
		return
	}
	fmt.Fprintf(b, "Compared with what Moodle was told, in the courses that are not frozen (threshold_percent %d%%):\n", c.Limit)
	for _, m := range c.Measures {
		mark := ""
		if m.Breaches(c.Limit) {
			mark = "  <- below the threshold"
		}
		fmt.Fprintf(b, "  %-20s %8d now, %8d then (%.1f%%)%s\n", m.Subject, m.Current, m.Previous, m.Percent(), mark)
	}
}

// send mails a guard notice; mail that cannot be sent never stops the
// export: it is noted in the result and logged.
func (x *Exporter) send(ctx context.Context, s guard.Settings, n guard.Notice, res *Result) {
	if note := guard.Mail(ctx, x.pool, x.mailer, s, n); note != "" {
		res.note("%s", note)
		if x.mailer != nil && s.SendEmail {
			x.logger.Warn("guard mail not sent", "stage", Stage, "instance", res.Instance, "entity", string(res.Feed), "error", note)
		}
	}
}

func measuresText(c guard.Check) string {
	var b strings.Builder
	writeMeasures(&b, c)
	return b.String()
}
