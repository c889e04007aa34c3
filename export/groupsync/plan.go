package groupsync

import (
	"fmt"
	"sort"
	"strings"

	"github.com/mimwarehouse/mim/moodle"
)

// Kind is what one write does.
type Kind string

// The kinds of write, in the order Apply sends them.
const (
	CreateGroup    Kind = "create_group"
	CreateGrouping Kind = "create_grouping"
	Assign         Kind = "assign"
	AddMember      Kind = "add_member"
	RemoveMember   Kind = "remove_member"
	Unassign       Kind = "unassign"
	DeleteGrouping Kind = "delete_grouping"
	DeleteGroup    Kind = "delete_group"
)

// Kinds lists every kind in apply order.
var Kinds = []Kind{CreateGroup, CreateGrouping, Assign, AddMember, RemoveMember, Unassign, DeleteGrouping, DeleteGroup}

// Ref names a group or grouping: by Moodle id when it exists, always by
// idnumber and name.
type Ref struct {
	ID       int64 // 0 when this plan creates it
	IDNumber string
	Name     string
}

// Op is one planned write.
type Op struct {
	Kind           Kind
	CourseID       int64
	CourseIDNumber string
	Group          Ref    // the group created, deleted, assigned, or whose members change
	Grouping       Ref    // the grouping created, deleted, or assigned to
	User           Member // for member changes
	// Deferred ops wait for this plan's deletions: their name is held by a
	// MIM group or grouping that is going (Blocker), so they are sent once
	// it is gone, in the same apply.
	Deferred bool
	Blocker  int64
}

func (op Op) String() string {
	switch op.Kind {
	case CreateGroup, DeleteGroup:
		return fmt.Sprintf("%s %q (%s)%s", op.Kind, op.Group.Name, op.Group.IDNumber, idSuffix(op.Group.ID))
	case CreateGrouping, DeleteGrouping:
		return fmt.Sprintf("%s %q (%s)%s", op.Kind, op.Grouping.Name, op.Grouping.IDNumber, idSuffix(op.Grouping.ID))
	case Assign, Unassign:
		return fmt.Sprintf("%s group %q to grouping %q", op.Kind, op.Group.Name, op.Grouping.Name)
	}
	u := fmt.Sprintf("user %d", op.User.UserID)
	if op.User.UserIDNumber != "" {
		u += " (" + op.User.UserIDNumber + ")"
	}
	return fmt.Sprintf("%s %s, group %q", op.Kind, u, op.Group.Name)
}

func idSuffix(id int64) string {
	if id == 0 {
		return ""
	}
	return fmt.Sprintf(" id %d", id)
}

// Waiting is a desired member who is not enrolled in the course yet: not
// sent (Moodle refuses group members who are not enrolled), reported, and
// added by the first sync after the enrolment arrives.
type Waiting struct {
	Group Ref
	User  Member
}

// Conflict is a desired group or grouping MIM cannot make because a group
// or grouping it does not own (a teacher's) holds the name, or another
// desired one of the same course does. MIM leaves it alone.
type Conflict struct {
	What     string // "group" or "grouping"
	IDNumber string // the desired one's
	Name     string
	HeldBy   Ref // the object holding the name
	Members  int // desired members not placed because of it
	Reason   string
}

// CoursePlan is the plan for one course.
type CoursePlan struct {
	CourseID       int64
	CourseIDNumber string
	Ops            []Op // in apply order
	Waiting        []Waiting
	Conflicts      []Conflict
	// Notes are changes MIM does not make: a MIM group renamed in CMIS
	// keeps its Moodle name (MIM follows groups by idnumber).
	Notes []string
	// Losses are the groups that lose members (the member budget's
	// per-group measure); Held those whose removals are held back.
	Losses []GroupLoss
	Held   []GroupLoss
}

// Count returns how many ops of kind the course plans.
func (cp *CoursePlan) Count(kind Kind) int {
	n := 0
	for _, op := range cp.Ops {
		if op.Kind == kind {
			n++
		}
	}
	return n
}

// Unreadable is a group-sync course whose state could not be read; the
// plan leaves it alone.
type Unreadable struct {
	CourseID       int64
	CourseIDNumber string
	Err            error
}

// Plan is everything a sync of one site would write, computed from the
// target and the state read from Moodle in the same run.
type Plan struct {
	Instance     string
	Prefix       string
	CourseFilter int64 // 0: every group-sync course
	Courses      []CoursePlan
	Unreadable   []Unreadable
	// OwnedGroups and OwnedGroupings count the MIM-owned objects in the
	// courses read: the base of the delete budget's share.
	OwnedGroups    int
	OwnedGroupings int
	// OwnedMembers counts the members of those groups: the base of the
	// member budget's share.
	OwnedMembers  int
	DesiredGroups int
	// Read says where the actual state came from (the night's database
	// read, the web services, or both).
	Read RunRead
}

// Count returns how many ops of kind the plan holds.
func (p *Plan) Count(kind Kind) int {
	n := 0
	for i := range p.Courses {
		n += p.Courses[i].Count(kind)
	}
	return n
}

// Counts returns the ops by kind (every kind present, zeros included).
func (p *Plan) Counts() map[Kind]int {
	out := make(map[Kind]int, len(Kinds))
	for _, k := range Kinds {
		out[k] = 0
	}
	for i := range p.Courses {
		for _, op := range p.Courses[i].Ops {
			out[op.Kind]++
		}
	}
	return out
}

// Writes counts every planned write.
func (p *Plan) Writes() int {
	n := 0
	for i := range p.Courses {
		n += len(p.Courses[i].Ops)
	}
	return n
}

// Waiting counts the desired members not enrolled yet.
func (p *Plan) Waiting() int {
	n := 0
	for i := range p.Courses {
		n += len(p.Courses[i].Waiting)
	}
	return n
}

// Conflicts counts the desired groups and groupings MIM cannot make.
func (p *Plan) Conflicts() int {
	n := 0
	for i := range p.Courses {
		n += len(p.Courses[i].Conflicts)
	}
	return n
}

// Ops returns every op of the plan, course by course.
func (p *Plan) Ops() []Op {
	var out []Op
	for i := range p.Courses {
		out = append(out, p.Courses[i].Ops...)
	}
	return out
}

// Functions lists the web-service functions applying the plan calls.
func (p *Plan) Functions() []string {
	fn := map[Kind]string{
		CreateGroup: "core_group_create_groups", CreateGrouping: "core_group_create_groupings",
		Assign: "core_group_assign_grouping", AddMember: "core_group_add_group_members",
		RemoveMember: "core_group_delete_group_members", Unassign: "core_group_unassign_grouping",
		DeleteGrouping: "core_group_delete_groupings", DeleteGroup: "core_group_delete_groups",
	}
	var out []string
	for _, k := range Kinds {
		if p.Count(k) > 0 {
			out = append(out, fn[k])
		}
	}
	return out
}

// MakePlan compares the target with the state read from Moodle. It is
// pure: the same inputs give the same plan. MIM touches only groups and
// groupings whose idnumber starts with prefix, and only in the target's
// courses:
//
//   - a desired group missing from Moodle is created, unless a group MIM
//     does not own holds its name (a Conflict; Moodle would refuse it too);
//   - its grouping likewise, and the group is assigned to it;
//   - desired members not in the group are added if enrolled, else
//     reported as Waiting; members MIM's group should not have are removed;
//   - a MIM group in a MIM grouping it no longer belongs to is unassigned
//     (other groups in MIM groupings, and MIM groups in other groupings,
//     are left alone);
//   - MIM groups and groupings no longer desired are deleted.
func MakePlan(t *Target, a *Actual, prefix string) *Plan {
	p := &Plan{Instance: t.Instance, Prefix: prefix}
	for _, ct := range t.Courses {
		p.DesiredGroups += len(ct.Groups)
		st := a.Courses[ct.CourseID]
		if st == nil {
			err := a.Unreadable[ct.CourseID]
			if err == nil {
				err = fmt.Errorf("course %d was not read", ct.CourseID)
			}
			p.Unreadable = append(p.Unreadable, Unreadable{CourseID: ct.CourseID, CourseIDNumber: ct.IDNumber, Err: err})
			continue
		}
		cp, ownedG, ownedGG := planCourse(&ct, st, prefix)
		p.OwnedGroups += ownedG
		p.OwnedGroupings += ownedGG
		p.OwnedMembers += ownedMembers(st, prefix)
		cp.Losses = groupLosses(cp.Ops, st)
		if len(cp.Ops)+len(cp.Waiting)+len(cp.Conflicts)+len(cp.Notes) > 0 {
			p.Courses = append(p.Courses, cp)
		}
	}
	return p
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// tooLong says why a desired group (and its grouping) cannot be made in
// Moodle: a name or idnumber longer than Moodle's column is refused there,
// so it is refused here, the group named, and never sent.
func tooLong(d *DesiredGroup) string {
	for _, c := range []struct {
		column, v string
		width     int
	}{
		{"groups.name", d.Name, moodle.GroupNameWidth}, {"groups.idnumber", d.IDNumber, moodle.GroupIDNumberWidth},
		{"groupings.name", d.GroupingName, moodle.GroupingNameWidth}, {"groupings.idnumber", d.GroupingIDNumber, moodle.GroupingIDNumberWidth},
	} {
		if why := moodle.TooLong(c.column, c.v, c.width); why != "" {
			return fmt.Sprintf("not sent: its %s %s", strings.TrimPrefix(strings.TrimPrefix(c.column, "groups."), "groupings."), why)
		}
	}
	return ""
}
