package moodle

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
)

// EnrolledUser is a user as core_enrol_get_enrolled_users describes them:
// their details plus their place in the course. Moodle leaves Groups out
// when the user is in none, and sends roles with an empty name for the
// standard roles. Raw (in User) is the whole object as sent.
type EnrolledUser struct {
	User
	LastCourseAccess Int         `json:"lastcourseaccess"`
	Groups           []GroupRef  `json:"groups"`
	Roles            []RoleRef   `json:"roles"`
	EnrolledCourses  []CourseRef `json:"enrolledcourses"`
}

// UnmarshalJSON decodes the user details and the course parts.
func (x *EnrolledUser) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &x.User); err != nil {
		return err
	}
	var rest struct {
		LastCourseAccess Int         `json:"lastcourseaccess"`
		Groups           []GroupRef  `json:"groups"`
		Roles            []RoleRef   `json:"roles"`
		EnrolledCourses  []CourseRef `json:"enrolledcourses"`
	}
	if err := json.Unmarshal(b, &rest); err != nil {
		return err
	}
	x.LastCourseAccess, x.Groups, x.Roles, x.EnrolledCourses = rest.LastCourseAccess, rest.Groups, rest.Roles, rest.EnrolledCourses
	return nil
}

// GroupRef is a group an enrolled user belongs to.
type GroupRef struct {
	ID                Int    `json:"id"`
	Name              string `json:"name"`
	Description       string `json:"description"`
	DescriptionFormat Int    `json:"descriptionformat"`
}

// RoleRef is a role a user has in a course.
type RoleRef struct {
	RoleID    Int    `json:"roleid"`
	Name      string `json:"name"` // "" for Moodle's standard roles
	ShortName string `json:"shortname"`
	SortOrder Int    `json:"sortorder"`
}

// CourseRef is a course an enrolled user is actively enrolled in.
type CourseRef struct {
	ID        Int    `json:"id"`
	FullName  string `json:"fullname"`
	ShortName string `json:"shortname"`
}

// EnrolledUsersOptions are core_enrol_get_enrolled_users' options.
type EnrolledUsersOptions struct {
	// OnlyActive leaves out suspended enrolments (by default Moodle
	// includes them); OnlySuspended returns only them (Moodle 3.11+).
	OnlyActive    bool
	OnlySuspended bool
	GroupID       int64
	// WithCapability keeps users with this capability in the course.
	WithCapability string
	// UserFields limits the fields returned (id is always sent).
	UserFields []string
	// LimitFrom and LimitNumber page through the users, ordered by id.
	LimitFrom   int
	LimitNumber int
}

func (o EnrolledUsersOptions) params() []Params {
	var out []Params
	add := func(name, value string) { out = append(out, P("name", name, "value", value)) }
	if o.OnlyActive {
		add("onlyactive", "1")
	}
	if o.OnlySuspended {
		add("onlysuspended", "1")
	}
	if o.GroupID != 0 {
		add("groupid", strconv.FormatInt(o.GroupID, 10))
	}
	if o.WithCapability != "" {
		add("withcapability", o.WithCapability)
	}
	if len(o.UserFields) > 0 {
		add("userfields", strings.Join(o.UserFields, ","))
	}
	if o.LimitFrom > 0 {
		add("limitfrom", strconv.Itoa(o.LimitFrom))
	}
	if o.LimitNumber > 0 {
		add("limitnumber", strconv.Itoa(o.LimitNumber))
	}
	return out
}

// GetEnrolledUsers returns one course's enrolled users in one request.
func (c *Client) GetEnrolledUsers(ctx context.Context, courseID int64, opts EnrolledUsersOptions) ([]EnrolledUser, error) {
	var out []EnrolledUser
	ps := P("courseid", courseID)
	if o := opts.params(); len(o) > 0 {
		ps = append(ps, Param{"options", o})
	}
	err := c.Call(ctx, "core_enrol_get_enrolled_users", ps, &out)
	return out, err
}

// EachEnrolledUser pages through a course's enrolled users, pageSize at a
// time (0: all in one request), calling fn for each. Pages are read one
// after the other; a course's users should not change meanwhile, or a
// page boundary may skip or repeat one.
func (c *Client) EachEnrolledUser(ctx context.Context, courseID int64, opts EnrolledUsersOptions, pageSize int,
	fn func(EnrolledUser) error) error {
	opts.LimitFrom, opts.LimitNumber = 0, pageSize
	for {
		page, err := c.GetEnrolledUsers(ctx, courseID, opts)
		if err != nil {
			return err
		}
		for _, u := range page {
			if err := fn(u); err != nil {
				return err
			}
		}
		if pageSize <= 0 || len(page) < pageSize {
			return nil
		}
		opts.LimitFrom += pageSize
	}
}

// UserCourse is a course a user is actively enrolled in, with their
// completion (core_enrol_get_users_courses).
type UserCourse struct {
	ID                    Int             `json:"id"`
	ShortName             string          `json:"shortname"`
	FullName              string          `json:"fullname"`
	IDNumber              string          `json:"idnumber"`
	Visible               Bool            `json:"visible"`
	Format                string          `json:"format"`
	Category              Int             `json:"category"`
	EnrolledUserCount     Int             `json:"enrolledusercount"`
	EnableCompletion      Bool            `json:"enablecompletion"`
	CompletionHasCriteria Bool            `json:"completionhascriteria"`
	Progress              *Float          `json:"progress"` // percent; nil when the course tracks none
	Completed             Bool            `json:"completed"`
	StartDate             Int             `json:"startdate"`
	EndDate               Int             `json:"enddate"`
	LastAccess            *Int            `json:"lastaccess"`
	Raw                   json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw object beside the decoded fields.
func (x *UserCourse) UnmarshalJSON(b []byte) error {
	type plain UserCourse
	if err := json.Unmarshal(b, (*plain)(x)); err != nil {
		return err
	}
	x.Raw = cloneRaw(b)
	return nil
}

// GetUserCourses returns the courses a user is actively enrolled in.
func (c *Client) GetUserCourses(ctx context.Context, userID int64) ([]UserCourse, error) {
	var out []UserCourse
	err := c.Call(ctx, "core_enrol_get_users_courses", P("userid", userID), &out)
	return out, err
}

// EnrolmentMethod is an enrolment instance that describes itself to users
// (self enrolment, guest access); manual and IMS instances do not appear.
type EnrolmentMethod struct {
	ID       Int             `json:"id"`
	CourseID Int             `json:"courseid"`
	Type     string          `json:"type"`
	Name     string          `json:"name"`
	Status   Bool            `json:"status"`
	Raw      json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw object beside the decoded fields.
func (x *EnrolmentMethod) UnmarshalJSON(b []byte) error {
	type plain EnrolmentMethod
	if err := json.Unmarshal(b, (*plain)(x)); err != nil {
		return err
	}
	x.Raw = cloneRaw(b)
	return nil
}

// GetEnrolmentMethods returns a course's self-describing enrolment methods.
func (c *Client) GetEnrolmentMethods(ctx context.Context, courseID int64) ([]EnrolmentMethod, error) {
	var out []EnrolmentMethod
	err := c.Call(ctx, "core_enrol_get_course_enrolment_methods", P("courseid", courseID), &out)
	return out, err
}

// ManualEnrolment enrols a user through the course's manual enrolment.
type ManualEnrolment struct {
	CourseID  int64
	UserID    int64
	RoleID    int64
	TimeStart int64 // Unix seconds; 0: none
	TimeEnd   int64
	Suspend   bool
}

// EnrolUsers enrols users manually (tests and the demo). Enrolling an
// enrolled user again succeeds and resets their enrolment's status and
// dates to the ones given.
func (c *Client) EnrolUsers(ctx context.Context, enrolments []ManualEnrolment) (*BatchResult[struct{}], error) {
	return writeBatch(ctx, c, batch[ManualEnrolment, struct{}]{
		function: "enrol_manual_enrol_users",
		list:     "enrolments",
		encode: func(e ManualEnrolment) any {
			p := P("roleid", e.RoleID, "userid", e.UserID, "courseid", e.CourseID)
			if e.TimeStart != 0 {
				p = append(p, Param{"timestart", e.TimeStart})
			}
			if e.TimeEnd != 0 {
				p = append(p, Param{"timeend", e.TimeEnd})
			}
			if e.Suspend {
				p = append(p, Param{"suspend", 1})
			}
			return p
		},
		describe: func(e ManualEnrolment) string {
			return "user " + strconv.FormatInt(e.UserID, 10) + " in course " + strconv.FormatInt(e.CourseID, 10)
		},
	}, enrolments)
}
