package groupsync

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/mimwarehouse/mim/export/guard"
	"github.com/mimwarehouse/mim/internal/progress"
)

// maxListed bounds the lines of each list in the text reports; the full
// lists are in the plan and in ctl.group_sync_action.
const maxListed = 20

// kindHeads are the column heads of the plan table, in Kinds order.
var kindHeads = map[Kind]string{
	CreateGroup: "+GROUP", CreateGrouping: "+GROUPING", Assign: "ASSIGN", AddMember: "+MEMBER",
	RemoveMember: "-MEMBER", Unassign: "UNASSIGN", DeleteGrouping: "-GROUPING", DeleteGroup: "-GROUP",
}

// WriteText prints the plan for people: counts per course, then the
// conflicts, waiting members, unreadable courses and notes; verbose adds
// every write and every waiting member.
func (p *Plan) WriteText(w io.Writer, verbose bool) error {
	read := p.DesiredGroups
	fmt.Fprintf(w, "site %s: %s desired; MIM owns %s and %s (idnumber prefix %q) in the courses read\n",
		p.Instance, progress.Counted(int64(read), "group", "groups"), progress.Counted(int64(p.OwnedGroups), "group", "groups"),
		progress.Counted(int64(p.OwnedGroupings), "grouping", "groupings"), p.Prefix)
	if p.CourseFilter != 0 && p.DesiredGroups == 0 {
		fmt.Fprintf(w, "  course %d has no desired groups in mart.exp_group_target (not a group-sync course?); MIM leaves it alone\n", p.CourseFilter)
		return nil
	}
	if len(p.Courses) == 0 && len(p.Unreadable) == 0 {
		fmt.Fprintln(w, "  nothing to change: Moodle already has the target")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"COURSE", "IDNUMBER"}
	for _, k := range Kinds {
		head = append(head, kindHeads[k])
	}
	head = append(head, "WAITING", "CONFLICTS")
	fmt.Fprintf(tw, "  %s\t\n", strings.Join(head, "\t"))
	total := make([]int, len(Kinds))
	for i := range p.Courses {
		cp := &p.Courses[i]
		row := []string{fmt.Sprint(cp.CourseID), cp.CourseIDNumber}
		for j, k := range Kinds {
			n := cp.Count(k)
			total[j] += n
			row = append(row, fmt.Sprint(n))
		}
		row = append(row, fmt.Sprint(len(cp.Waiting)), fmt.Sprint(len(cp.Conflicts)))
		fmt.Fprintf(tw, "  %s\t\n", strings.Join(row, "\t"))
	}
	row := []string{"total", fmt.Sprintf("%d courses", len(p.Courses))}
	for _, n := range total {
		row = append(row, fmt.Sprint(n))
	}
	row = append(row, fmt.Sprint(p.Waiting()), fmt.Sprint(p.Conflicts()))
	fmt.Fprintf(tw, "  %s\t\n", strings.Join(row, "\t"))
	if err := tw.Flush(); err != nil {
		return err
	}
	if p.Writes() == 0 {
		fmt.Fprintln(w, "  no writes: the MIM groups are as the target wants them")
	}

	if verbose {
		for i := range p.Courses {
			cp := &p.Courses[i]
			if len(cp.Ops)+len(cp.Waiting) == 0 {
				continue
			}
			fmt.Fprintf(w, "course %d (%s):\n", cp.CourseID, cp.CourseIDNumber)
			for _, op := range cp.Ops {
				after := ""
				if op.Deferred {
					after = " (after the deletions free its name)"
				}
				fmt.Fprintf(w, "  %s%s\n", op, after)
			}
			for _, wt := range cp.Waiting {
				fmt.Fprintf(w, "  waiting: user %d (%s) for group %q: not enrolled in the course yet\n", wt.User.UserID, wt.User.UserIDNumber, wt.Group.Name)
			}
		}
	}
	listed := 0
	for i := range p.Courses {
		cp := &p.Courses[i]
		for _, c := range cp.Conflicts {
			if listed == 0 {
				fmt.Fprintln(w, "conflicts (left alone; rename one of them in Moodle or in CMIS):")
			}
			if listed++; listed <= maxListed {
				holder := fmt.Sprintf("%q", c.HeldBy.Name)
				if c.HeldBy.ID > 0 {
					holder = fmt.Sprintf("%s %d %q", c.What, c.HeldBy.ID, c.HeldBy.Name)
				}
				fmt.Fprintf(w, "  course %d (%s): %s %q (%s): %s (%s); %d members not placed\n",
					cp.CourseID, cp.CourseIDNumber, c.What, c.Name, c.IDNumber, c.Reason, holder, c.Members)
			}
		}
	}
	if listed > maxListed {
		fmt.Fprintf(w, "  ... and %d more\n", listed-maxListed)
	}
	if n := p.Waiting(); n > 0 && !verbose {
		courses := 0
		for i := range p.Courses {
			if len(p.Courses[i].Waiting) > 0 {
				courses++
			}
		}
		fmt.Fprintf(w, "waiting: %d members in %d courses are not enrolled yet; they are added by the first sync after their enrolment (--verbose lists them)\n", n, courses)
	}
	for i, u := range p.Unreadable {
		if i == 0 {
			fmt.Fprintln(w, "unreadable courses (left alone this run):")
		}
		if i < maxListed {
			fmt.Fprintf(w, "  course %d (%s): %v\n", u.CourseID, u.CourseIDNumber, u.Err)
		}
	}
	if len(p.Unreadable) > maxListed {
		fmt.Fprintf(w, "  ... and %d more\n", len(p.Unreadable)-maxListed)
	}
	notes := 0
	for i := range p.Courses {
		for _, n := range p.Courses[i].Notes {
			if notes == 0 {
				fmt.Fprintln(w, "notes:")
			}
			if notes++; notes <= maxListed {
				fmt.Fprintf(w, "  course %d: %s\n", p.Courses[i].CourseID, n)
			}
		}
	}
	if notes > maxListed {
		fmt.Fprintf(w, "  ... and %d more\n", notes-maxListed)
	}
	return nil
}

// WriteText prints what an apply did: counts by kind and outcome, then the
// items that failed or were not attempted, with Moodle's answer.
func (r *Result) WriteText(w io.Writer) error {
	for _, l := range r.text() {
		if _, err := fmt.Fprintf(w, "%s%s\n", strings.Repeat("  ", l.depth), l.text); err != nil {
			return err
		}
	}
	return nil
}

// Lines are what WriteText prints, one line each and not indented, for
// the run's summary.
func (r *Result) Lines() []string {
	var out []string
	for _, l := range r.text() {
		out = append(out, l.text)
	}
	return out
}

// textLine is one line of an apply's report, indented depth steps.
type textLine struct {
	depth int
	text  string
}

// text is what an apply did, line by line.
func (r *Result) text() []textLine {
	var out []textLine
	add := func(depth int, format string, args ...any) {
		out = append(out, textLine{depth, fmt.Sprintf(format, args...)})
	}
	head := fmt.Sprintf("site %s: %s of %s applied in %s", r.Instance, progress.Count(int64(r.Total(Applied))),
		progress.Counted(int64(len(r.Actions)), "write", "writes"), progress.Counted(int64(r.Requests), "request", "requests"))
	if f, n := r.Total(Failed), r.Total(NotAttempted); f+n > 0 {
		head += fmt.Sprintf("; %d failed, %d not attempted", f, n)
	}
	add(0, "%s", head)
	if n := len(r.Retries); n > 0 {
		add(1, "%d writes Moodle answered without an error were not there when the courses were read again "+
			"(PHP's max_input_vars?); sent again in batches of %d: %d took, %d did not",
			n, RetryBatch, countOutcome(r.Retries, Applied), r.VoidRetries())
	}
	if r.Unverified > 0 {
		add(1, "%d writes not verified: their course could not be read again", r.Unverified)
	}
	for _, k := range Kinds {
		a, f, n := r.Count(k, Applied), r.Count(k, Failed), r.Count(k, NotAttempted)
		if a+f+n == 0 {
			continue
		}
		line := fmt.Sprintf("%-16s %d applied", k, a)
		if f > 0 {
			line += fmt.Sprintf(", %d failed", f)
		}
		if n > 0 {
			line += fmt.Sprintf(", %d not attempted", n)
		}
		add(1, "%s", line)
	}
	listed := 0
	for _, a := range r.all() {
		if a.Outcome == Applied || a.Outcome == Void && !a.Retry {
			continue
		}
		if listed == 0 {
			add(0, "not applied (the next sync tries again from a fresh read of Moodle):")
		}
		if listed++; listed <= maxListed {
			add(1, "course %d (%s): %s: %s: %s", a.CourseID, a.CourseIDNumber, a.Op, a.Outcome, a.Error)
		}
	}
	if listed > maxListed {
		add(1, "... and %d more (ctl.group_sync_action has them all)", listed-maxListed)
	}
	return out
}

// BudgetLines say what the budgets decided, one line each, for the run's
// summary and `mim groups apply`.
func (r *Report) BudgetLines() []string {
	d := r.Decisions
	if d == nil {
		return nil
	}
	var out []string
	if d.Delete != "" {
		out = append(out, fmt.Sprintf("delete budget %s: %s", d.Delete, d.Budgets.Delete.Text()))
	}
	if d.Members != "" {
		out = append(out, fmt.Sprintf("member budget %s: %s", d.Members, d.Budgets.Members.Text()))
	}
	if r.Plan != nil {
		for _, h := range r.Plan.Held() {
			out = append(out, fmt.Sprintf("held: group %q (%s) of course %s would lose %d of its %d members; its removals were not sent",
				h.Group.Name, h.Group.IDNumber, h.CourseIDNumber, h.Removes, h.Members))
		}
	}
	if d.Holds == guard.Overridden {
		out = append(out, "group_member_drop_override sent the removals of the groups that would lose more than group_member_drop_percent")
	}
	out = append(out, r.Notes...)
	return out
}

// Text says what the delete budget measured, for people.
func (b Budget) Text() string {
	n := progress.Counted
	return fmt.Sprintf("%s and %s deleted, %s in all (limit %s); %s of the %s MIM owns in the courses read (%.1f%%, limit %d%%)",
		n(int64(b.GroupDeletes), "group", "groups"), n(int64(b.GroupingDeletes), "grouping", "groupings"),
		progress.Count(int64(b.Deletes())), n(int64(b.Limit), "deletion", "deletions"),
		progress.Count(int64(b.GroupDeletes)), n(int64(b.OwnedGroups), "group", "groups"), b.Share(), b.LimitPercent)
}

// Text says what the member budget measured, for people.
func (b MemberBudget) Text() string {
	n := progress.Counted
	return fmt.Sprintf("%s removed (limit %s); %s of the %s of the groups MIM owns in the courses read (%.1f%%, limit %d%%)",
		n(int64(b.Removes), "member", "members"), progress.Count(int64(b.Limit)), progress.Count(int64(b.Removes)),
		n(int64(b.OwnedMembers), "member", "members"), b.Share(), b.LimitPercent)
}
