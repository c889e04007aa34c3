package moodle

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
)

// Group is a course group. EnrolmentKey is null (empty) unless one is set.
type Group struct {
	ID                Int             `json:"id"`
	CourseID          Int             `json:"courseid"`
	Name              string          `json:"name"`
	Description       string          `json:"description"`
	DescriptionFormat Int             `json:"descriptionformat"`
	EnrolmentKey      Text            `json:"enrolmentkey"`
	IDNumber          string          `json:"idnumber"`
	Visibility        Int             `json:"visibility"`
	Participation     Bool            `json:"participation"`
	Raw               json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw object beside the decoded fields.
func (x *Group) UnmarshalJSON(b []byte) error {
	type plain Group
	if err := json.Unmarshal(b, (*plain)(x)); err != nil {
		return err
	}
	x.Raw = cloneRaw(b)
	return nil
}

// Grouping is a course grouping; Groups is filled only by GetGroupings
// with returnGroups.
type Grouping struct {
	ID                Int             `json:"id"`
	CourseID          Int             `json:"courseid"`
	Name              string          `json:"name"`
	Description       string          `json:"description"`
	DescriptionFormat Int             `json:"descriptionformat"`
	IDNumber          string          `json:"idnumber"`
	Groups            []Group         `json:"groups"`
	Raw               json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw object beside the decoded fields.
func (x *Grouping) UnmarshalJSON(b []byte) error {
	type plain Grouping
	if err := json.Unmarshal(b, (*plain)(x)); err != nil {
		return err
	}
	x.Raw = cloneRaw(b)
	return nil
}

// GroupMembers are the members of one group.
type GroupMembers struct {
	GroupID Int   `json:"groupid"`
	UserIDs []Int `json:"userids"`
}

// GetCourseGroups returns a course's groups, ordered by name.
func (c *Client) GetCourseGroups(ctx context.Context, courseID int64) ([]Group, error) {
	var out []Group
	err := c.Call(ctx, "core_group_get_course_groups", P("courseid", courseID), &out)
	return out, err
}

// GetCourseGroupings returns a course's groupings, ordered by name.
func (c *Client) GetCourseGroupings(ctx context.Context, courseID int64) ([]Grouping, error) {
	var out []Grouping
	err := c.Call(ctx, "core_group_get_course_groupings", P("courseid", courseID), &out)
	return out, err
}

// GetGroupings returns groupings by id, with their groups when
// returnGroups. An id that does not exist fails the request (invalidrecord).
func (c *Client) GetGroupings(ctx context.Context, ids []int64, returnGroups bool) ([]Grouping, error) {
	const fn = "core_group_get_groupings"
	var out []Grouping
	err := splitRead(ctx, c, fn, P("returngroups", returnGroups), "groupingids", ids, func(body []byte) error {
		var part []Grouping
		if err := decodeInto(fn, body, &part); err != nil {
			return err
		}
		out = append(out, part...)
		return nil
	})
	return out, err
}

// GetGroupMembers returns the members of groups by id. A group that does
// not exist fails the request (invalidrecord).
func (c *Client) GetGroupMembers(ctx context.Context, groupIDs []int64) ([]GroupMembers, error) {
	const fn = "core_group_get_group_members"
	var out []GroupMembers
	err := splitRead(ctx, c, fn, nil, "groupids", groupIDs, func(body []byte) error {
		var part []GroupMembers
		if err := decodeInto(fn, body, &part); err != nil {
			return err
		}
		out = append(out, part...)
		return nil
	})
	return out, err
}

// NewGroup is a group to create.
type NewGroup struct {
	CourseID     int64
	Name         string // unique in the course
	IDNumber     string // unique in the course when set
	Description  string
	EnrolmentKey string
}

// NewGrouping is a grouping to create.
type NewGrouping struct {
	CourseID    int64
	Name        string
	IDNumber    string
	Description string
}

// GroupingAssignment puts a group in a grouping (or takes it out).
type GroupingAssignment struct {
	GroupingID int64
	GroupID    int64
}

// Member is a user in a group.
type Member struct {
	GroupID int64
	UserID  int64
}

// CreateGroups creates groups. A group whose name or idnumber is taken in
// its course fails alone; an answer with id 0 is a failure.
func (c *Client) CreateGroups(ctx context.Context, groups []NewGroup) (*BatchResult[Group], error) {
	return writeBatch(ctx, c, batch[NewGroup, Group]{
		function: "core_group_create_groups",
		list:     "groups",
		encode: func(g NewGroup) any {
			p := P("courseid", g.CourseID, "name", g.Name, "description", g.Description)
			if g.EnrolmentKey != "" {
				p = append(p, Param{"enrolmentkey", g.EnrolmentKey})
			}
			if g.IDNumber != "" {
				p = append(p, Param{"idnumber", g.IDNumber})
			}
			return p
		},
		decode: decodeList[Group]("core_group_create_groups"),
		check: func(g NewGroup, v Group) error {
			if err := positiveID("group", v.ID); err != nil {
				return err
			}
			if int64(v.CourseID) != g.CourseID || v.Name != g.Name {
				//lint:ignore ST1005 "Moodle" is a proper noun
				return fmt.Errorf("Moodle answered group %q in course %d for %q in course %d", v.Name, v.CourseID, g.Name, g.CourseID)
			}
			return nil
		},
		describe: func(g NewGroup) string { return fmt.Sprintf("%q in course %d", g.Name, g.CourseID) },
	}, groups)
}

// CreateGroupings creates groupings.
func (c *Client) CreateGroupings(ctx context.Context, groupings []NewGrouping) (*BatchResult[Grouping], error) {
	return writeBatch(ctx, c, batch[NewGrouping, Grouping]{
		function: "core_group_create_groupings",
		list:     "groupings",
		encode: func(g NewGrouping) any {
			p := P("courseid", g.CourseID, "name", g.Name, "description", g.Description)
			if g.IDNumber != "" {
				p = append(p, Param{"idnumber", g.IDNumber})
			}
			return p
		},
		decode: decodeList[Grouping]("core_group_create_groupings"),
		check: func(g NewGrouping, v Grouping) error {
			if err := positiveID("grouping", v.ID); err != nil {
				return err
			}
			if int64(v.CourseID) != g.CourseID || v.Name != g.Name {
				//lint:ignore ST1005 "Moodle" is a proper noun
				return fmt.Errorf("Moodle answered grouping %q in course %d for %q in course %d", v.Name, v.CourseID, g.Name, g.CourseID)
			}
			return nil
		},
		describe: func(g NewGrouping) string { return fmt.Sprintf("%q in course %d", g.Name, g.CourseID) },
	}, groupings)
}

func assignmentBatch(function, list string) batch[GroupingAssignment, struct{}] {
	return batch[GroupingAssignment, struct{}]{
		function: function,
		list:     list,
		encode:   func(a GroupingAssignment) any { return P("groupingid", a.GroupingID, "groupid", a.GroupID) },
		describe: func(a GroupingAssignment) string {
			return fmt.Sprintf("group %d, grouping %d", a.GroupID, a.GroupingID)
		},
	}
}

// AssignGroupings puts groups into groupings; assigning twice is harmless.
func (c *Client) AssignGroupings(ctx context.Context, as []GroupingAssignment) (*BatchResult[struct{}], error) {
	return writeBatch(ctx, c, assignmentBatch("core_group_assign_grouping", "assignments"), as)
}

// UnassignGroupings takes groups out of groupings.
func (c *Client) UnassignGroupings(ctx context.Context, as []GroupingAssignment) (*BatchResult[struct{}], error) {
	return writeBatch(ctx, c, assignmentBatch("core_group_unassign_grouping", "unassignments"), as)
}

func memberBatch(function string) batch[Member, struct{}] {
	return batch[Member, struct{}]{
		function: function,
		list:     "members",
		encode:   func(m Member) any { return P("groupid", m.GroupID, "userid", m.UserID) },
		describe: func(m Member) string { return fmt.Sprintf("user %d, group %d", m.UserID, m.GroupID) },
	}
}

// AddGroupMembers adds users to groups. A user not enrolled in the group's
// course fails alone (InvalidParameter, "Only enrolled users may be
// members of groups"); adding a member twice is harmless.
func (c *Client) AddGroupMembers(ctx context.Context, members []Member) (*BatchResult[struct{}], error) {
	return writeBatch(ctx, c, memberBatch("core_group_add_group_members"), members)
}

// DeleteGroupMembers removes users from groups; removing a non-member is
// harmless.
func (c *Client) DeleteGroupMembers(ctx context.Context, members []Member) (*BatchResult[struct{}], error) {
	return writeBatch(ctx, c, memberBatch("core_group_delete_group_members"), members)
}

func idBatch(function, list, what string) batch[int64, struct{}] {
	return batch[int64, struct{}]{
		function: function,
		list:     list,
		encode:   func(id int64) any { return id },
		describe: func(id int64) string { return what + " " + strconv.FormatInt(id, 10) },
	}
}

// DeleteGroups deletes groups with their memberships. Moodle ignores ids
// that do not exist (the answer is the same null), so a delete says
// nothing about whether the group was there.
func (c *Client) DeleteGroups(ctx context.Context, ids []int64) (*BatchResult[struct{}], error) {
	return writeBatch(ctx, c, idBatch("core_group_delete_groups", "groupids", "group"), ids)
}

// DeleteGroupings deletes groupings (not their groups); missing ids are
// ignored as for DeleteGroups.
func (c *Client) DeleteGroupings(ctx context.Context, ids []int64) (*BatchResult[struct{}], error) {
	return writeBatch(ctx, c, idBatch("core_group_delete_groupings", "groupingids", "grouping"), ids)
}

// GroupUpdate rewrites a group's name and idnumber (Moodle requires the
// name even when it does not change).
type GroupUpdate struct {
	ID       int64
	Name     string
	IDNumber string
}

// UpdateGroups rewrites groups (core_group_update_groups). The answer is
// null: the caller re-reads what it changed to know it happened.
func (c *Client) UpdateGroups(ctx context.Context, us []GroupUpdate) (*BatchResult[struct{}], error) {
	return writeBatch(ctx, c, batch[GroupUpdate, struct{}]{
		function: "core_group_update_groups",
		list:     "groups",
		encode:   func(u GroupUpdate) any { return P("id", u.ID, "name", u.Name, "idnumber", u.IDNumber) },
		describe: func(u GroupUpdate) string { return fmt.Sprintf("group %d %q", u.ID, u.Name) },
	}, us)
}

// GroupingUpdate rewrites a grouping's name and idnumber, keeping its
// description (which Moodle requires).
type GroupingUpdate struct {
	ID          int64
	Name        string
	IDNumber    string
	Description string
}

// UpdateGroupings rewrites groupings (core_group_update_groupings); the
// answer is null, as for UpdateGroups.
func (c *Client) UpdateGroupings(ctx context.Context, us []GroupingUpdate) (*BatchResult[struct{}], error) {
	return writeBatch(ctx, c, batch[GroupingUpdate, struct{}]{
		function: "core_group_update_groupings",
		list:     "groupings",
		encode: func(u GroupingUpdate) any {
			return P("id", u.ID, "name", u.Name, "description", u.Description, "idnumber", u.IDNumber)
		},
		describe: func(u GroupingUpdate) string { return fmt.Sprintf("grouping %d %q", u.ID, u.Name) },
	}, us)
}
