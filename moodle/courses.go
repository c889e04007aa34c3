package moodle

import (
	"context"
	"encoding/json"
	"fmt"
)

// Criterion is one key/value search criterion (core_user_get_users,
// core_course_get_categories).
type Criterion struct {
	Key   string
	Value string
}

func criteriaParam(cs []Criterion) []Params {
	out := make([]Params, len(cs))
	for i, c := range cs {
		out[i] = P("key", c.Key, "value", c.Value)
	}
	return out
}

// Category is a course category. Raw is the object as Moodle sent it.
type Category struct {
	ID                Int             `json:"id"`
	Name              string          `json:"name"`
	IDNumber          string          `json:"idnumber"`
	Description       string          `json:"description"`
	DescriptionFormat Int             `json:"descriptionformat"`
	Parent            Int             `json:"parent"`
	SortOrder         Int             `json:"sortorder"`
	CourseCount       Int             `json:"coursecount"`
	Visible           Bool            `json:"visible"`
	Depth             Int             `json:"depth"`
	Path              string          `json:"path"`
	Raw               json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw object beside the decoded fields.
func (x *Category) UnmarshalJSON(b []byte) error {
	type plain Category
	if err := json.Unmarshal(b, (*plain)(x)); err != nil {
		return err
	}
	x.Raw = cloneRaw(b)
	return nil
}

// GetCategories returns the categories matching every criterion (all of
// them when none is given), with their subcategories.
func (c *Client) GetCategories(ctx context.Context, criteria ...Criterion) ([]Category, error) {
	var out []Category
	var ps Params
	if len(criteria) > 0 {
		ps = P("criteria", criteriaParam(criteria))
	}
	err := c.Call(ctx, "core_course_get_categories", ps, &out)
	return out, err
}

// Course is a course as core_course_get_courses and
// core_course_get_courses_by_field describe it (each sends fields the
// other does not; Raw holds whatever was sent).
type Course struct {
	ID               Int             `json:"id"`
	ShortName        string          `json:"shortname"`
	FullName         string          `json:"fullname"`
	DisplayName      string          `json:"displayname"`
	IDNumber         string          `json:"idnumber"`
	CategoryID       Int             `json:"categoryid"`
	CategoryName     string          `json:"categoryname"`
	Summary          string          `json:"summary"`
	Format           string          `json:"format"`
	Visible          Bool            `json:"visible"`
	StartDate        Int             `json:"startdate"`
	EndDate          Int             `json:"enddate"`
	EnableCompletion Bool            `json:"enablecompletion"`
	TimeCreated      Int             `json:"timecreated"`
	TimeModified     Int             `json:"timemodified"`
	Raw              json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw object beside the decoded fields.
func (x *Course) UnmarshalJSON(b []byte) error {
	type plain Course
	if err := json.Unmarshal(b, (*plain)(x)); err != nil {
		return err
	}
	x.Raw = cloneRaw(b)
	return nil
}

// GetCourses returns the courses with the given ids, or every course (the
// site course, id 1, included) when none is given. Long id lists are split
// across requests.
func (c *Client) GetCourses(ctx context.Context, ids ...int64) ([]Course, error) {
	const fn = "core_course_get_courses"
	if len(ids) == 0 {
		var out []Course
		err := c.Call(ctx, fn, nil, &out)
		return out, err
	}
	var out []Course
	err := splitRead(ctx, c, fn, nil, "options[ids]", ids, func(body []byte) error {
		var part []Course
		if err := decodeInto(fn, body, &part); err != nil {
			return err
		}
		out = append(out, part...)
		return nil
	})
	return out, err
}

// GetCoursesByField returns the courses whose field (id, ids, shortname,
// idnumber, category) has value; an empty field returns every course.
func (c *Client) GetCoursesByField(ctx context.Context, field, value string) ([]Course, []Warning, error) {
	var out struct {
		Courses  []Course  `json:"courses"`
		Warnings []Warning `json:"warnings"`
	}
	err := c.Call(ctx, "core_course_get_courses_by_field", P("field", field, "value", value), &out)
	return out.Courses, out.Warnings, err
}

// NewCourse is a course to create.
type NewCourse struct {
	FullName   string
	ShortName  string
	CategoryID int64
	IDNumber   string
	Summary    string
	Format     string // the site's default when empty
	Hidden     bool
	StartDate  int64 // Unix seconds; now when 0
	EndDate    int64
}

// CreatedCourse is Moodle's answer for a created course.
type CreatedCourse struct {
	ID        Int    `json:"id"`
	ShortName string `json:"shortname"`
}

// CreateCourses creates courses (tests and the demo; MIM does not create
// courses on a real site).
func (c *Client) CreateCourses(ctx context.Context, courses []NewCourse) (*BatchResult[CreatedCourse], error) {
	return writeBatch(ctx, c, batch[NewCourse, CreatedCourse]{
		function: "core_course_create_courses",
		list:     "courses",
		encode: func(n NewCourse) any {
			p := P("fullname", n.FullName, "shortname", n.ShortName, "categoryid", n.CategoryID)
			if n.IDNumber != "" {
				p = append(p, Param{"idnumber", n.IDNumber})
			}
			if n.Summary != "" {
				p = append(p, Param{"summary", n.Summary})
			}
			if n.Format != "" {
				p = append(p, Param{"format", n.Format})
			}
			if n.Hidden {
				p = append(p, Param{"visible", 0})
			}
			if n.StartDate != 0 {
				p = append(p, Param{"startdate", n.StartDate})
			}
			if n.EndDate != 0 {
				p = append(p, Param{"enddate", n.EndDate})
			}
			return p
		},
		decode:   decodeList[CreatedCourse]("core_course_create_courses"),
		check:    func(_ NewCourse, v CreatedCourse) error { return positiveID("course", v.ID) },
		describe: func(n NewCourse) string { return n.ShortName },
	}, courses)
}

// positiveID rejects the id 0 (or a missing id) that a half-failed write
// can leave behind; the incumbent recorded such ids and then tried to add
// members to group 0.
func positiveID(what string, id Int) error {
	if id <= 0 {
		//lint:ignore ST1005 "Moodle" is a proper noun
		return fmt.Errorf("Moodle answered %s id %d", what, id)
	}
	return nil
}
