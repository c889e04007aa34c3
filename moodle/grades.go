package moodle

import (
	"context"
	"encoding/json"
)

// UserGrades are one user's grade items in one course
// (gradereport_user_get_grade_items).
type UserGrades struct {
	CourseID       Int             `json:"courseid"`
	CourseIDNumber string          `json:"courseidnumber"`
	UserID         Int             `json:"userid"`
	UserFullName   string          `json:"userfullname"`
	UserIDNumber   string          `json:"useridnumber"`
	MaxDepth       Int             `json:"maxdepth"`
	GradeItems     []GradeItem     `json:"gradeitems"`
	Raw            json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw object beside the decoded fields.
func (x *UserGrades) UnmarshalJSON(b []byte) error {
	type plain UserGrades
	if err := json.Unmarshal(b, (*plain)(x)); err != nil {
		return err
	}
	x.Raw = cloneRaw(b)
	return nil
}

// GradeItem is a grade item with one user's grade on it. The course total
// has type "course" and no name; GradeRaw is nil while ungraded.
type GradeItem struct {
	ID                  Int             `json:"id"`
	ItemName            string          `json:"itemname"`
	ItemType            string          `json:"itemtype"`
	ItemModule          string          `json:"itemmodule"`
	ItemInstance        Int             `json:"iteminstance"`
	IDNumber            string          `json:"idnumber"`
	CategoryID          Int             `json:"categoryid"`
	Locked              Bool            `json:"locked"`
	WeightRaw           *Float          `json:"weightraw"`
	Status              string          `json:"status"`
	GradeRaw            *Float          `json:"graderaw"`
	GradeDateGraded     *Int            `json:"gradedategraded"`
	GradeDateSubmitted  *Int            `json:"gradedatesubmitted"`
	GradeIsHidden       Bool            `json:"gradeishidden"`
	GradeFormatted      string          `json:"gradeformatted"`
	GradeMin            Float           `json:"grademin"`
	GradeMax            Float           `json:"grademax"`
	PercentageFormatted string          `json:"percentageformatted"`
	Raw                 json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw object beside the decoded fields.
func (x *GradeItem) UnmarshalJSON(b []byte) error {
	type plain GradeItem
	if err := json.Unmarshal(b, (*plain)(x)); err != nil {
		return err
	}
	x.Raw = cloneRaw(b)
	return nil
}

// GetGradeItems returns the grade items of a course with the grades of
// one user, or of every graded user when userID is 0. Moodle regrades the
// course to answer, which is heavy: extract grades only where enabled.
func (c *Client) GetGradeItems(ctx context.Context, courseID, userID int64) ([]UserGrades, []Warning, error) {
	ps := P("courseid", courseID)
	if userID != 0 {
		ps = append(ps, Param{"userid", userID})
	}
	var out struct {
		UserGrades []UserGrades `json:"usergrades"`
		Warnings   []Warning    `json:"warnings"`
	}
	err := c.Call(ctx, "gradereport_user_get_grade_items", ps, &out)
	return out.UserGrades, out.Warnings, err
}

// CompletionStatus is a user's completion of a course.
type CompletionStatus struct {
	Completed   Bool                  `json:"completed"`
	Aggregation Int                   `json:"aggregation"`
	Completions []CompletionCriterion `json:"completions"`
	Raw         json.RawMessage       `json:"-"`
}

// UnmarshalJSON keeps the raw object beside the decoded fields.
func (x *CompletionStatus) UnmarshalJSON(b []byte) error {
	type plain CompletionStatus
	if err := json.Unmarshal(b, (*plain)(x)); err != nil {
		return err
	}
	x.Raw = cloneRaw(b)
	return nil
}

// CompletionCriterion is one criterion of a course's completion.
type CompletionCriterion struct {
	Type          Int    `json:"type"`
	Title         string `json:"title"`
	Status        string `json:"status"`
	Complete      Bool   `json:"complete"`
	TimeCompleted *Int   `json:"timecompleted"`
}

// GetCompletionStatus returns a user's completion of a course. A course
// without completion criteria is an *Error with code nocriteriaset.
func (c *Client) GetCompletionStatus(ctx context.Context, courseID, userID int64) (*CompletionStatus, []Warning, error) {
	var out struct {
		CompletionStatus *CompletionStatus `json:"completionstatus"`
		Warnings         []Warning         `json:"warnings"`
	}
	err := c.Call(ctx, "core_completion_get_course_completion_status", P("courseid", courseID, "userid", userID), &out)
	return out.CompletionStatus, out.Warnings, err
}

// Role is a role as a role-listing function describes it.
type Role struct {
	ID        Int             `json:"id"`
	ShortName string          `json:"shortname"`
	Name      string          `json:"name"`
	SortOrder Int             `json:"sortorder"`
	Raw       json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw object beside the decoded fields.
func (x *Role) UnmarshalJSON(b []byte) error {
	type plain Role
	if err := json.Unmarshal(b, (*plain)(x)); err != nil {
		return err
	}
	x.Raw = cloneRaw(b)
	return nil
}

// GetAllRoles calls core_role_get_all_roles. Moodle 4.5 core has no such
// function (the recorded answer is invalidrecord on external_functions,
// an *Error of kind FunctionMissing); it exists only where a plugin adds
// it. MIM harvests roles from enrolments instead.
func (c *Client) GetAllRoles(ctx context.Context) ([]Role, error) {
	var out []Role
	err := c.Call(ctx, "core_role_get_all_roles", nil, &out)
	return out, err
}
