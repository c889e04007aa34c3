package feeds

import (
	"context"
	"fmt"
	"strings"

	"github.com/mimwarehouse/mim/export/guard"
	"github.com/mimwarehouse/mim/internal/notify"
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
		"If the drop is expected, let one export through with:\n"+
		"  mim settings set threshold_override true --reason \"...\"\n")
	subject := fmt.Sprintf("%s [%s %s]", s.Subject, c.Instance, feed)
	x.send(ctx, s, subject, b.String(), []int64{id}, res)
	return guard.Refusal(c, string(feed))
}

// mailPublished tells the team that an export went out on an override,
// and which courses' drops were held back.
func (x *Exporter) mailPublished(ctx context.Context, p *imsPlan, decision string, ids []int64, res *Result) {
	var b strings.Builder
	var subject string
	site := p.site.Name
	if decision == guard.Overridden {
		subject = fmt.Sprintf("MIM threshold override used: the IMS export of %s went out despite the threshold", site)
		fmt.Fprintf(&b, "threshold_override was set, so this export went out although it is below threshold_percent;\n"+
			"the override has been reset to false.\n\nSite: %s\nExport: %d\n\n", site, res.ExportID)
		writeMeasures(&b, p.check)
		b.WriteString("\n")
	} else {
		subject = fmt.Sprintf("MIM export: drops held back in %s of %s", plural(int64(len(p.held)), "course", "courses"), site)
		fmt.Fprintf(&b, "Site: %s\n\n", site)
	}
	if len(p.held) > 0 {
		fmt.Fprintf(&b, "These courses would have lost more than course_drop_percent (%d%%) of their students, so their drops\n"+
			"were held back (Moodle keeps those enrolments; the rest of the feed went out). A wrong or changed\n"+
			"mapping is the usual cause. They are held again at every export until the mapping is fixed, or until\n"+
			"course_drop_percent is raised for an export whose drops are confirmed (mim settings set course_drop_percent 100).\n\n",
			p.settings.CourseDropPercent)
		for _, h := range p.held {
			fmt.Fprintf(&b, "  %s: %d of %d students (%.0f%%)\n", h.Course, h.Drops, h.Students, h.Percent())
			for _, d := range p.heldSample[h.Course] {
				fmt.Fprintf(&b, "      %s\n", d)
			}
		}
	}
	x.send(ctx, p.settings, subject, b.String(), ids, res)
}

func writeMeasures(b *strings.Builder, c guard.Check) {
	if c.First {
		b.WriteString("This is the site's first export: there is nothing to compare with.\n")
		return
	}
	fmt.Fprintf(b, "Compared with the last successful export (threshold_percent %d%%):\n", c.Limit)
	for _, m := range c.Measures {
		mark := ""
		if m.Breaches(c.Limit) {
			mark = "  <- below the threshold"
		}
		fmt.Fprintf(b, "  %-20s %8d now, %8d then (%.1f%%)%s\n", m.Subject, m.Current, m.Previous, m.Percent(), mark)
	}
}

// send mails the guard events ids when threshold_send_email is on, and
// records that they were notified. A mail that cannot be sent never stops
// the export: it is noted in the result and logged.
func (x *Exporter) send(ctx context.Context, s guard.Settings, subject, body string, ids []int64, res *Result) {
	if !s.SendEmail {
		res.note("threshold_send_email is off: no mail sent")
		return
	}
	if x.mailer == nil {
		res.note("no mail sent: notify.smtp is not configured")
		return
	}
	if err := x.mailer.Send(ctx, notify.Message{To: s.Email, Subject: subject, Body: body}); err != nil {
		res.note("guard mail not sent: %v", err)
		x.logger.Warn("guard mail not sent", "stage", Stage, "instance", res.Instance, "entity", string(res.Feed), "error", err)
		return
	}
	if err := guard.MarkNotified(ctx, x.pool, ids); err != nil {
		res.note("%v", err)
	}
}

func measuresText(c guard.Check) string {
	var b strings.Builder
	writeMeasures(&b, c)
	return b.String()
}
