// Package groupsynctest fills mart.exp_group_target for tests, with the
// columns docs/contracts.md §2 fixes, until (and beside) the transform that
// builds it: a test states the desired groups directly.
package groupsynctest

import (
	"context"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Row is one row of mart.exp_group_target: one desired member, or a group
// without members when UserID is 0.
type Row struct {
	Instance         string
	CourseID         int64
	CourseIDNumber   string
	GroupIDNumber    string
	GroupName        string
	GroupingIDNumber string // "" : the group is in no grouping
	GroupingName     string
	UserID           int64 // 0: NULL
	UserIDNumber     string
}

// Group returns the rows of one group in the incumbent's shape (a grouping
// of the same idnumber and name): one per member, or one with no user
// when members is empty. Members are user ids; their idnumber is "u<id>".
func Group(instance string, courseID int64, courseIDNumber, idnumber, name string, members ...int64) []Row {
	base := Row{Instance: instance, CourseID: courseID, CourseIDNumber: courseIDNumber,
		GroupIDNumber: idnumber, GroupName: name, GroupingIDNumber: idnumber, GroupingName: name}
	if len(members) == 0 {
		return []Row{base}
	}
	out := make([]Row, len(members))
	for i, u := range members {
		out[i] = base
		out[i].UserID = u
		out[i].UserIDNumber = "u" + strconv.FormatInt(u, 10)
	}
	return out
}

// DDL creates the mart table as the contract defines it, if it is missing.
const DDL = `CREATE TABLE IF NOT EXISTS mart.exp_group_target (
	instance          text   NOT NULL,
	courseid          bigint NOT NULL,
	course_idnumber   text   NOT NULL,
	group_idnumber    text   NOT NULL,
	group_name        text   NOT NULL,
	grouping_idnumber text,
	grouping_name     text,
	userid            bigint,
	user_idnumber     text)`

// Fill replaces the content of mart.exp_group_target with rows, creating
// the table first if needed, as a transform's refill would.
func Fill(t testing.TB, pool *pgxpool.Pool, rows ...[]Row) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, DDL); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM mart.exp_group_target`); err != nil {
			return err
		}
		var all [][]any
		for _, rs := range rows {
			for _, r := range rs {
				var uid any
				if r.UserID != 0 {
					uid = r.UserID
				}
				all = append(all, []any{r.Instance, r.CourseID, r.CourseIDNumber, r.GroupIDNumber, r.GroupName,
					nullable(r.GroupingIDNumber), nullable(r.GroupingName), uid, nullable(r.UserIDNumber)})
			}
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"mart", "exp_group_target"},
			[]string{"instance", "courseid", "course_idnumber", "group_idnumber", "group_name",
				"grouping_idnumber", "grouping_name", "userid", "user_idnumber"}, pgx.CopyFromRows(all))
		return err
	})
	if err != nil {
		t.Fatalf("filling mart.exp_group_target: %v", err)
	}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
