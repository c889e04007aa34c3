package moodle_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/mimwarehouse/mim/moodle"
	"github.com/mimwarehouse/mim/moodle/moodletest"
	"github.com/mimwarehouse/mim/moodle/moodletest/recorded"
)

// clientCase is one recorded error case (moodletest/testdata/samples/
// errors/TABLE.md) met through the client.
type clientCase struct {
	name    string
	student bool // call with a student's token
	badTok  bool // call with a token the site does not know
	call    func(ctx context.Context, c *moodle.Client) error
	// want: ok, or the kind and errorcode of the *Error, and a piece of
	// its debug info (the site shows debug info).
	ok    bool
	kind  moodle.Kind
	code  string
	debug string
}

func batchErr[T any](r *moodle.BatchResult[T], err error) error { return err }

var clientCases = []clientCase{
	{name: "invalid_token", badTok: true, call: func(ctx context.Context, c *moodle.Client) error { _, err := c.SiteInfo(ctx); return err },
		kind: moodle.InvalidToken, code: "invalidtoken"},
	{name: "missing_wsfunction", call: func(ctx context.Context, c *moodle.Client) error { return c.Call(ctx, "", nil, nil) },
		kind: moodle.InvalidParameter, code: "invalidparameter", debug: "Missing function name"},
	{name: "invalid_param_type", call: func(ctx context.Context, c *moodle.Client) error {
		return c.Call(ctx, "core_enrol_get_enrolled_users", moodle.P("courseid", "abc"), nil)
	}, kind: moodle.InvalidParameter, code: "invalidparameter", debug: `courseid => Invalid parameter value detected: Invalid external api parameter: the value is "abc"`},
	{name: "missing_required_param", call: func(ctx context.Context, c *moodle.Client) error {
		return c.Call(ctx, "core_enrol_get_enrolled_users", nil, nil)
	}, kind: moodle.InvalidParameter, code: "invalidparameter", debug: "Missing required key in single structure: courseid"},
	{name: "unexpected_param", call: func(ctx context.Context, c *moodle.Client) error {
		return c.Call(ctx, "core_webservice_get_site_info", moodle.P("foo", "bar"), nil)
	}, kind: moodle.InvalidParameter, code: "invalidparameter", debug: "Unexpected keys (foo) detected in parameter array."},
	{name: "function_not_in_service", call: func(ctx context.Context, c *moodle.Client) error {
		return c.Call(ctx, "core_course_delete_courses", moodle.P("courseids", []int64{999999}), nil)
	}, kind: moodle.AccessException, code: "accessexception", debug: "core_course_delete_courses() is not allowed"},
	{name: "function_does_not_exist", call: func(ctx context.Context, c *moodle.Client) error { _, err := c.GetAllRoles(ctx); return err },
		kind: moodle.FunctionMissing, code: "invalidrecord", debug: "external_functions"},
	{name: "capability_error_create_users", student: true, call: func(ctx context.Context, c *moodle.Client) error {
		return batchErr(c.CreateUsers(ctx, []moodle.NewUser{{Username: "nocap", Password: "Harness#123", FirstName: "N", LastName: "C", Email: "n@example.com"}}))
	}, kind: moodle.NoPermissions, code: "nopermissions"},
	{name: "context_error_get_course_groups_not_enrolled", student: true, call: func(ctx context.Context, c *moodle.Client) error {
		_, err := c.GetCourseGroups(ctx, 16)
		return err
	}, kind: moodle.ContextNotValid, code: "errorcoursecontextnotvalid"},
	{name: "context_error_enrolled_users_not_enrolled", student: true, call: func(ctx context.Context, c *moodle.Client) error {
		_, err := c.GetEnrolledUsers(ctx, 16, moodle.EnrolledUsersOptions{})
		return err
	}, kind: moodle.ContextNotValid, code: "errorcoursecontextnotvalid"},
	{name: "capability_error_student_get_course_groups", student: true, call: func(ctx context.Context, c *moodle.Client) error {
		_, err := c.GetCourseGroups(ctx, 14)
		return err
	}, kind: moodle.NoPermissions, code: "nopermissions"},
	{name: "capability_error_student_grades_other_user", student: true, call: func(ctx context.Context, c *moodle.Client) error {
		_, _, err := c.GetGradeItems(ctx, 14, 107)
		return err
	}, kind: moodle.NoPermissions, code: "nopermissiontoviewgrades"},
	{name: "capability_error_student_create_courses", student: true, call: func(ctx context.Context, c *moodle.Client) error {
		return batchErr(c.CreateCourses(ctx, []moodle.NewCourse{{FullName: "X", ShortName: "X-1", CategoryID: 2}}))
	}, kind: moodle.NoPermissions, code: "nopermissions"},
	{name: "capability_nocap_get_users_by_field", student: true, call: func(ctx context.Context, c *moodle.Client) error {
		us, err := c.GetUsersByField(ctx, "idnumber", []string{"23100111"})
		return expectEmpty(len(us), err)
	}, ok: true},
	{name: "duplicate_group_name", call: func(ctx context.Context, c *moodle.Client) error {
		return batchErr(c.CreateGroups(ctx, []moodle.NewGroup{{CourseID: 14, Name: "Tutorial A"}}))
	}, kind: moodle.InvalidParameter, code: "invalidparameter", debug: "Group with the same name already exists in the course"},
	{name: "duplicate_group_idnumber", call: func(ctx context.Context, c *moodle.Client) error {
		return batchErr(c.CreateGroups(ctx, []moodle.NewGroup{{CourseID: 14, Name: "Another", IDNumber: "MOD1234-A7U-T1-2025-TUT1"}}))
	}, kind: moodle.Other, code: "idnumbertaken"},
	{name: "duplicate_grouping_name", call: func(ctx context.Context, c *moodle.Client) error {
		return batchErr(c.CreateGroupings(ctx, []moodle.NewGrouping{{CourseID: 14, Name: "Labs"}}))
	}, kind: moodle.InvalidParameter, code: "invalidparameter", debug: "Grouping with the same name already exists in the course"},
	{name: "delete_group_id_0", call: func(ctx context.Context, c *moodle.Client) error { return batchErr(c.DeleteGroups(ctx, []int64{0})) }, ok: true},
	{name: "delete_group_nonexistent", call: func(ctx context.Context, c *moodle.Client) error {
		return batchErr(c.DeleteGroups(ctx, []int64{999999}))
	}, ok: true},
	{name: "delete_grouping_id_0", call: func(ctx context.Context, c *moodle.Client) error {
		return batchErr(c.DeleteGroupings(ctx, []int64{0}))
	}, ok: true},
	{name: "add_member_not_enrolled", call: func(ctx context.Context, c *moodle.Client) error {
		return batchErr(c.AddGroupMembers(ctx, []moodle.Member{{GroupID: 1, UserID: 105}}))
	}, kind: moodle.InvalidParameter, code: "invalidparameter", debug: "Only enrolled users may be members of groups"},
	{name: "add_member_group_nonexistent", call: func(ctx context.Context, c *moodle.Client) error {
		return batchErr(c.AddGroupMembers(ctx, []moodle.Member{{GroupID: 999999, UserID: 107}}))
	}, kind: moodle.RecordMissing, code: "invalidrecord", debug: "FROM {groups}"},
	{name: "delete_member_not_in_group", call: func(ctx context.Context, c *moodle.Client) error {
		return batchErr(c.DeleteGroupMembers(ctx, []moodle.Member{{GroupID: 1, UserID: 108}}))
	}, ok: true},
	{name: "get_group_members_nonexistent", call: func(ctx context.Context, c *moodle.Client) error {
		_, err := c.GetGroupMembers(ctx, []int64{999999})
		return err
	}, kind: moodle.RecordMissing, code: "invalidrecord", debug: "FROM {groups}"},
	{name: "course_not_found_enrolled_users", call: func(ctx context.Context, c *moodle.Client) error {
		_, err := c.GetEnrolledUsers(ctx, 999999, moodle.EnrolledUsersOptions{})
		return err
	}, kind: moodle.RecordMissing, code: "invalidrecord", debug: "FROM {course}"},
	{name: "course_not_found_groups", call: func(ctx context.Context, c *moodle.Client) error {
		_, err := c.GetCourseGroups(ctx, 999999)
		return err
	}, kind: moodle.ContextNotValid, code: "errorcoursecontextnotvalid"},
	{name: "courses_by_field_nomatch", call: func(ctx context.Context, c *moodle.Client) error {
		cs, _, err := c.GetCoursesByField(ctx, "idnumber", "NOPE-404")
		return expectEmpty(len(cs), err)
	}, ok: true},
	{name: "courses_by_field_badfield", call: func(ctx context.Context, c *moodle.Client) error {
		_, _, err := c.GetCoursesByField(ctx, "foo", "1")
		return err
	}, kind: moodle.InvalidParameter, code: "invalidparameter", debug: "Invalid field name"},
	{name: "users_by_field_nomatch", call: func(ctx context.Context, c *moodle.Client) error {
		us, err := c.GetUsersByField(ctx, "idnumber", []string{"NOPE-404"})
		return expectEmpty(len(us), err)
	}, ok: true},
	{name: "users_by_field_badfield", call: func(ctx context.Context, c *moodle.Client) error {
		_, err := c.GetUsersByField(ctx, "foo", []string{"x"})
		return err
	}, kind: moodle.Other, code: "codingerror", debug: "The search field 'foo' is not supported"},
	{name: "get_users_bad_criteria", call: func(ctx context.Context, c *moodle.Client) error {
		_, _, err := c.GetUsers(ctx, moodle.Criterion{Key: "foo", Value: "bar"})
		return err
	}, kind: moodle.InvalidParameter, code: "invalidfieldparameter"},
	{name: "get_users_no_match", call: func(ctx context.Context, c *moodle.Client) error {
		us, _, err := c.GetUsers(ctx, moodle.Criterion{Key: "lastname", Value: "Nobody-Here"})
		return expectEmpty(len(us), err)
	}, ok: true},
	{name: "completion_no_criteria", call: func(ctx context.Context, c *moodle.Client) error {
		_, _, err := c.GetCompletionStatus(ctx, 23, 107)
		return err
	}, kind: moodle.Other, code: "nocriteriaset"},
	{name: "completion_user_not_enrolled", call: func(ctx context.Context, c *moodle.Client) error {
		_, _, err := c.GetCompletionStatus(ctx, 14, 2)
		return err
	}, kind: moodle.Other, code: "notenroled"},
	{name: "duplicate_username", call: func(ctx context.Context, c *moodle.Client) error {
		return batchErr(c.CreateUsers(ctx, []moodle.NewUser{{Username: "s23100111", Password: "Harness#123", FirstName: "J", LastName: "M", Email: "j@example.com"}}))
	}, kind: moodle.InvalidParameter, code: "invalidparameter", debug: "Username already exists: s23100111"},
	{name: "create_user_bad_password", call: func(ctx context.Context, c *moodle.Client) error {
		return batchErr(c.CreateUsers(ctx, []moodle.NewUser{{Username: "badpw", Password: "bad", FirstName: "B", LastName: "P", Email: "b@example.com"}}))
	}, kind: moodle.Other, code: "<div>Passwords must be at least 8 characters long.</div><div>Passwords must have at least 1 digit(s).</div>" +
		"<div>Passwords must have at least 1 upper case letter(s).</div><div>The password must have at least 1 special character(s) such as *, -, or #.</div>"},
	{name: "create_user_unknown_customfield", call: func(ctx context.Context, c *moodle.Client) error {
		r, err := c.CreateUsers(ctx, []moodle.NewUser{{Username: "eltcf", Password: "Harness#123", FirstName: "Cf", LastName: "Unknown",
			Email: "cf@example.com", CustomFields: map[string]string{"nosuchfield": "x"}}})
		if err == nil && r.Items[0].Value.ID <= 0 {
			return errors.New("no id")
		}
		return err
	}, ok: true},
	{name: "duplicate_course_shortname", call: func(ctx context.Context, c *moodle.Client) error {
		return batchErr(c.CreateCourses(ctx, []moodle.NewCourse{{FullName: "Dup", ShortName: "MOD1234-A7U-T1-2025", CategoryID: 2}}))
	}, kind: moodle.Other, code: "shortnametaken"},
	{name: "duplicate_course_idnumber", call: func(ctx context.Context, c *moodle.Client) error {
		return batchErr(c.CreateCourses(ctx, []moodle.NewCourse{{FullName: "Dup", ShortName: "DUP-1", CategoryID: 2, IDNumber: "MOD1234-A7U-T1-2025"}}))
	}, kind: moodle.Other, code: "courseidnumbertaken"},
	{name: "create_course_bad_category", call: func(ctx context.Context, c *moodle.Client) error {
		return batchErr(c.CreateCourses(ctx, []moodle.NewCourse{{FullName: "Bad", ShortName: "BAD-1", CategoryID: 999999}}))
	}, kind: moodle.ContextNotValid, code: "errorcatcontextnotvalid"},
	{name: "enrol_course_nonexistent", call: func(ctx context.Context, c *moodle.Client) error {
		return batchErr(c.EnrolUsers(ctx, []moodle.ManualEnrolment{{CourseID: 999999, UserID: 107, RoleID: 5}}))
	}, kind: moodle.InvalidParameter, code: "invalidparameter", debug: "Context does not exist"},
	{name: "enrol_user_nonexistent", call: func(ctx context.Context, c *moodle.Client) error {
		return batchErr(c.EnrolUsers(ctx, []moodle.ManualEnrolment{{CourseID: 14, UserID: 999999, RoleID: 5}}))
	}, kind: moodle.Other, code: ""},
	{name: "enrol_role_not_assignable", call: func(ctx context.Context, c *moodle.Client) error {
		return batchErr(c.EnrolUsers(ctx, []moodle.ManualEnrolment{{CourseID: 14, UserID: 107, RoleID: 2}}))
	}, kind: moodle.Other, code: "wsusercannotassign"},
	{name: "enrol_already_enrolled", call: func(ctx context.Context, c *moodle.Client) error {
		return batchErr(c.EnrolUsers(ctx, []moodle.ManualEnrolment{{CourseID: 14, UserID: 107, RoleID: 5}}))
	}, ok: true},
	{name: "grade_items_course_nonexistent", call: func(ctx context.Context, c *moodle.Client) error {
		_, _, err := c.GetGradeItems(ctx, 999999, 0)
		return err
	}, kind: moodle.RecordMissing, code: "invalidrecord", debug: "FROM {course}"},
	// The client always POSTs with moodlewsrestformat=json first; the
	// recorded GET and XML answers are the simulator's business (see
	// moodletest's fidelity test) and, for XML, TestTransientFailures.
	{name: "get_method_success", call: func(ctx context.Context, c *moodle.Client) error {
		cs, _, err := c.GetCoursesByField(ctx, "id", "14")
		if err == nil && len(cs) != 1 {
			return errors.New("course 14 not found")
		}
		return err
	}, ok: true},
	{name: "batch_create_groups_one_bad", call: func(ctx context.Context, c *moodle.Client) error {
		r, err := c.CreateGroups(ctx, []moodle.NewGroup{{CourseID: 14, Name: "Batch new group"}, {CourseID: 14, Name: "Tutorial A"}})
		// Moodle rolls the batch back; the client splits it, so the good
		// group is created and only the bad one fails.
		if r.Requests != 3 || r.Items[0].Err != nil || r.Items[1].Err == nil {
			return errors.New("the batch was not split down to the bad item")
		}
		return err
	}, kind: moodle.InvalidParameter, code: "invalidparameter", debug: "Group with the same name already exists in the course"},
	{name: "batch_probe_after", call: func(ctx context.Context, c *moodle.Client) error {
		gs, err := c.GetCourseGroups(ctx, 14)
		if err == nil && (len(gs) != 5 || gs[0].Name != "Batch new group") {
			return errors.New("the good group of the split batch is not there")
		}
		return err
	}, ok: true},
}

func expectEmpty(n int, err error) error {
	if err == nil && n != 0 {
		return errors.New("expected no results")
	}
	return err
}

func TestRecordedErrorCasesThroughClient(t *testing.T) {
	ctx := context.Background()
	site := moodletest.NewServer(t, recorded.State())
	site.AddToken(moodletest.Token{Token: "student-token", UserID: recorded.Student})
	admin := newClient(t, site, site.Token())
	student := newClient(t, site, "student-token")
	bad := newClient(t, site, "not-a-token")
	covered := map[string]bool{"missing_token": true}
	// A client without a token cannot be built: the "missing token" case
	// cannot be sent.
	if _, err := moodle.New("x", site.URL(), ""); err == nil {
		t.Error("a client without a token was built")
	}
	for _, tc := range clientCases {
		covered[tc.name] = true
		c := admin
		if tc.student {
			c = student
		} else if tc.badTok {
			c = bad
		}
		err := tc.call(ctx, c)
		if tc.ok {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var me *moodle.Error
		if !errors.As(err, &me) {
			t.Errorf("%s: got %v, want a Moodle exception", tc.name, err)
			continue
		}
		if me.Kind != tc.kind || me.ErrorCode != tc.code || !strings.Contains(me.DebugInfo, tc.debug) {
			t.Errorf("%s: got kind %v code %q debug %q, want %v %q %q", tc.name, me.Kind, me.ErrorCode, me.DebugInfo, tc.kind, tc.code, tc.debug)
		}
		if moodle.IsTransient(err) {
			t.Errorf("%s: a Moodle exception reported as transient", tc.name)
		}
	}
	// Every recorded case is met; the XML ones by the client's refusal of
	// non-JSON answers (TestTransientFailures).
	table, err := os.ReadFile("moodletest/testdata/samples/errors/TABLE.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(table), "\n") {
		name, ok := strings.CutPrefix(line, "| ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, " |")
		if name == "case" || name == "---" || strings.HasPrefix(name, "xml_format_") {
			continue
		}
		if !covered[name] {
			t.Errorf("recorded case %s is not met through the client", name)
		}
	}
}
