package groupsync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mimwarehouse/mim/internal/envguard"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/moodle"
)

// Adoption is a group or grouping MIM does not own that holds the name of
// one MIM wants in the course: adopting it gives it MIM's idnumber, so the
// next sync treats it as MIM's (members added and removed as CMIS says,
// within the budget) instead of reporting a conflict.
type Adoption struct {
	What           string // "group" or "grouping"
	CourseID       int64
	CourseIDNumber string
	ID             int64  // the Moodle object's id
	Name           string // its name, the desired one's too
	OldIDNumber    string // what it has now
	IDNumber       string // MIM's desired idnumber
	Members        int    // a group's members now
	// Refused says why it is not adopted ("" when it is): an object with an
	// idnumber of its own may belong to another integration.
	Refused string
}

// AdoptPlan is what adopting in one course would do.
type AdoptPlan struct {
	Instance  string
	CourseID  int64
	Adoptions []Adoption
	// After is the course's group plan once the adoptions are made: what
	// the next `mim groups apply` will add, remove and assign there.
	After *CoursePlan
}

// Adoptable lists what can be adopted.
func (p *AdoptPlan) Adoptable() []Adoption {
	var out []Adoption
	for _, a := range p.Adoptions {
		if a.Refused == "" {
			out = append(out, a)
		}
	}
	return out
}

// PlanAdoption reads the course's target and its groups now and lists the
// objects MIM does not own that hold a desired name (only those called one
// of names, when given), and the course's plan once they are adopted.
func PlanAdoption(ctx context.Context, q warehouse.Querier, c *moodle.Client, o Options, names []string) (*AdoptPlan, error) {
	if o.CourseID == 0 {
		return nil, errors.New("adopting groups: say which course (a Moodle course id)")
	}
	t, a, _, err := load(ctx, q, c, o)
	if err != nil {
		return nil, err
	}
	ap := &AdoptPlan{Instance: o.Site.Name, CourseID: o.CourseID}
	if len(t.Courses) == 0 {
		return nil, fmt.Errorf("adopting groups: course %d of site %s is not a group-sync course (mart.exp_group_target has no group for it)", o.CourseID, o.Site.Name)
	}
	st := a.Courses[o.CourseID]
	if st == nil {
		return nil, fmt.Errorf("adopting groups: course %d of site %s could not be read: %v", o.CourseID, o.Site.Name, a.Unreadable[o.CourseID])
	}
	before := MakePlan(t, a, o.Site.GroupPrefix)
	for _, cp := range before.Courses {
		for _, cf := range cp.Conflicts {
			if !strings.Contains(cf.Reason, "MIM does not own") {
				continue
			}
			if len(names) > 0 && !slices.Contains(names, cf.Name) {
				continue
			}
			ad := Adoption{What: cf.What, CourseID: cp.CourseID, CourseIDNumber: cp.CourseIDNumber, ID: cf.HeldBy.ID,
				Name: cf.Name, OldIDNumber: cf.HeldBy.IDNumber, IDNumber: cf.IDNumber}
			if cf.What == "group" {
				for _, g := range st.Groups {
					if g.ID == ad.ID {
						ad.Members = len(g.Members)
					}
				}
			}
			if ad.OldIDNumber != "" {
				ad.Refused = fmt.Sprintf("it has the idnumber %q, which another integration may use; clear it in Moodle first to adopt it", ad.OldIDNumber)
			}
			ap.Adoptions = append(ap.Adoptions, ad)
		}
	}
	// The course as the next sync will see it once the adoptions are made.
	for i := range st.Groups {
		for _, ad := range ap.Adoptable() {
			if ad.What == "group" && st.Groups[i].ID == ad.ID {
				st.Groups[i].IDNumber = ad.IDNumber
			}
		}
	}
	for i := range st.Groupings {
		for _, ad := range ap.Adoptable() {
			if ad.What == "grouping" && st.Groupings[i].ID == ad.ID {
				st.Groupings[i].IDNumber = ad.IDNumber
			}
		}
	}
	after := MakePlan(t, a, o.Site.GroupPrefix)
	for i := range after.Courses {
		if after.Courses[i].CourseID == o.CourseID {
			ap.After = &after.Courses[i]
		}
	}
	return ap, nil
}

// Adopt gives the adoptable objects of ap MIM's idnumber, under the
// environment guard's permit for web-service writes, then re-reads the
// course to see that Moodle has them (the answer to an update is null),
// and records each in ctl.group_adoption, with who and why, as a step of
// o.Run. Their members are not touched here: the next group sync adds
// and removes them like any MIM group's, within the budget.
func Adopt(ctx context.Context, pool *pgxpool.Pool, c *moodle.Client, g *envguard.Guard, o Options, ap *AdoptPlan, reason string) error {
	if o.Run == nil || o.Site == nil {
		return errors.New("adopting groups: a run and a site are required")
	}
	if strings.TrimSpace(reason) == "" {
		return errors.New("adopting groups: say why (--reason): the adoption is recorded with it")
	}
	step, err := o.Run.Step(ctx, ledger.StepKey{Stage: Stage, Source: "moodle", Instance: o.Site.Name, Entity: "adopt"})
	if err != nil {
		return err
	}
	adopted, err := adopt(ctx, pool, c, g, o, ap, reason)
	counts := ledger.Counts{In: int64(len(ap.Adoptions)), Changed: int64(adopted)}
	if ferr := step.Finish(ctx, ledger.Outcome(err), counts, ap, err); ferr != nil && err == nil {
		err = ferr
	}
	return err
}

func adopt(ctx context.Context, pool *pgxpool.Pool, c *moodle.Client, g *envguard.Guard, o Options, ap *AdoptPlan, reason string) (int, error) {
	todo := ap.Adoptable()
	if len(todo) == 0 {
		return 0, errors.New("adopting groups: nothing to adopt in this course")
	}
	permit, info, err := g.WebServices(ctx, o.Site.Guard(), c)
	if err != nil {
		if rerr := envguard.Record(ctx, pool, o.Run.ID, err); rerr != nil {
			return 0, errors.Join(err, rerr)
		}
		return 0, err
	}
	if !permit.Covers(c.Name(), c.URL()) {
		return 0, fmt.Errorf("adopting groups on site %s: no environment guard permit; nothing was sent", o.Site.Name)
	}
	if missing := info.Missing(moodle.GroupAdoptFunctions...); len(missing) > 0 {
		return 0, fmt.Errorf("adopting groups on site %s: the token's service lacks %s; nothing was written", o.Site.Name, strings.Join(missing, ", "))
	}
	var groups []moodle.GroupUpdate
	var groupings []moodle.GroupingUpdate
	for _, ad := range todo {
		if ad.What == "group" {
			groups = append(groups, moodle.GroupUpdate{ID: ad.ID, Name: ad.Name, IDNumber: ad.IDNumber})
		}
	}
	if slices.ContainsFunc(todo, func(a Adoption) bool { return a.What == "grouping" }) {
		// Moodle wants a grouping's description with its update: keep it.
		gs, err := c.GetCourseGroupings(ctx, ap.CourseID)
		if err != nil {
			return 0, fmt.Errorf("adopting groupings: reading the course's groupings: %w", err)
		}
		for _, ad := range todo {
			if ad.What != "grouping" {
				continue
			}
			u := moodle.GroupingUpdate{ID: ad.ID, Name: ad.Name, IDNumber: ad.IDNumber}
			for _, gg := range gs {
				if int64(gg.ID) == ad.ID {
					u.Description = gg.Description
				}
			}
			groupings = append(groupings, u)
		}
	}
	var sendErr error
	if len(groups) > 0 {
		if _, err := c.UpdateGroups(ctx, groups); err != nil {
			sendErr = errors.Join(sendErr, err)
		}
	}
	if len(groupings) > 0 {
		if _, err := c.UpdateGroupings(ctx, groupings); err != nil {
			sendErr = errors.Join(sendErr, err)
		}
	}
	// Observed, not assumed: what the course has now.
	have := map[string]string{}
	gs, err := c.GetCourseGroups(ctx, ap.CourseID)
	if err != nil {
		return 0, errors.Join(sendErr, fmt.Errorf("re-reading the course's groups: %w", err))
	}
	for _, g := range gs {
		have[fmt.Sprintf("group %d", int64(g.ID))] = g.IDNumber
	}
	ggs, err := c.GetCourseGroupings(ctx, ap.CourseID)
	if err != nil {
		return 0, errors.Join(sendErr, fmt.Errorf("re-reading the course's groupings: %w", err))
	}
	for _, g := range ggs {
		have[fmt.Sprintf("grouping %d", int64(g.ID))] = g.IDNumber
	}
	adopted := 0
	var failed []string
	for _, ad := range todo {
		status, msg := "adopted", ""
		if have[fmt.Sprintf("%s %d", ad.What, ad.ID)] != ad.IDNumber {
			status, msg = "failed", "Moodle does not show the new idnumber"
			if sendErr != nil {
				msg += ": " + sendErr.Error()
			}
			failed = append(failed, fmt.Sprintf("%s %q", ad.What, ad.Name))
		} else {
			adopted++
		}
		if _, err := pool.Exec(ctx, `INSERT INTO ctl.group_adoption (run_id, instance, course_id, course_idnumber, kind, moodle_id, name,
				old_idnumber, idnumber, members_before, status, error, by, reason)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULLIF($12, ''), $13, $14)`,
			o.Run.ID, o.Site.Name, ad.CourseID, ad.CourseIDNumber, ad.What, ad.ID, ad.Name, ad.OldIDNumber, ad.IDNumber,
			ad.Members, status, msg, o.By, reason); err != nil {
			return adopted, fmt.Errorf("recording the adoption of %s %q: %w", ad.What, ad.Name, err)
		}
	}
	if len(failed) > 0 {
		return adopted, fmt.Errorf("adopting on site %s: %s not adopted (%v)", o.Site.Name, strings.Join(failed, ", "), sendErr)
	}
	return adopted, nil
}
