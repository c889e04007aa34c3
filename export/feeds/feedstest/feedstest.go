// Package feedstest fills the marts the feeds read (docs/contracts.md §2)
// for tests, with the contract's columns, until (and beside) the transforms
// that build them; and derives a site's IMS target from the synthetic
// institution by the Manifest's rules, with the drift it leaves on a
// simulated site.
package feedstest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Membership is one row of mart.exp_ims_membership.
type Membership struct {
	Instance       string
	CourseIDNumber string
	UserIDNumber   string
	RoleType       string // an IMS code ("01") or a MIM role name mapped by exports.ims_roles
	Status         int    // 1 enrolled, 0 kept suspended
	Begin, LastDay time.Time
	Cohort         string
	StudentCode    string
	MappingID      int64
}

// Profile is one row of mart.exp_profile_fields.
type Profile struct {
	Instance, Username, StudentNumber, ProgrammeName, ProgrammeCode, UGPG string
	ApprovedModules, PreapprovalModules, YearLevel                        string
}

// TutorPair is one row of mart.exp_personal_tutor.
type TutorPair struct {
	Instance, Role, Tutor, Student, StudentCode, TutorUPI, Source string
}

// MergeCandidate is one row of mart.exp_merge_candidates.
type MergeCandidate struct {
	Instance                 string
	Seq                      int
	FromUserID, ToUserID     int64
	FromUsername, ToUsername string
	FromIDNumber, ToIDNumber string
	Reason, KeepReason       string
	Evidence                 string
}

// Person is one row of mart.exp_ims_person.
type Person struct {
	Instance, UserIDNumber, Username, Auth, Given, Family, Email string
}

// DDL creates the marts as the contract defines them, where missing.
var DDL = []string{
	`CREATE TABLE IF NOT EXISTS mart.exp_ims_membership (
		instance text NOT NULL, course_idnumber text NOT NULL, user_idnumber text NOT NULL, roletype text NOT NULL,
		status smallint NOT NULL, timeframe_begin date, timeframe_end date, cohort text, student_code text, mapping_id bigint)`,
	`CREATE TABLE IF NOT EXISTS mart.exp_ims_person (
		instance text NOT NULL, user_idnumber text, username text, auth text, given text, family text, email text)`,
	`CREATE TABLE IF NOT EXISTS mart.exp_profile_fields (
		instance text NOT NULL, username text, student_number text, programme_name text, programme_code text,
		ug_pg text, approved_modules text, preapproval_modules text, year_level text,
		user_id bigint, idnumber text, carry text)`,
	`CREATE TABLE IF NOT EXISTS mart.exp_personal_tutor (
		instance text NOT NULL, role_shortname text, tutor_idnumber text, student_idnumber text,
		student_code text, tutor_upi text, source text)`,
	`CREATE TABLE IF NOT EXISTS mart.exp_merge_candidates (
		instance text NOT NULL, seq integer, from_userid bigint, to_userid bigint, from_username text, to_username text,
		from_idnumber text, to_idnumber text, reason text, keep_reason text, evidence text)`,
}

func fill(t testing.TB, pool *pgxpool.Pool, table string, cols []string, rows [][]any) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, d := range DDL {
			if _, err := tx.Exec(ctx, d); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM mart.`+table); err != nil {
			return err
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"mart", table}, cols, pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		t.Fatalf("filling mart.%s: %v", table, err)
	}
}

// FillMemberships replaces the content of mart.exp_ims_membership.
func FillMemberships(t testing.TB, pool *pgxpool.Pool, rows []Membership) {
	t.Helper()
	all := make([][]any, len(rows))
	for i, r := range rows {
		all[i] = []any{r.Instance, r.CourseIDNumber, r.UserIDNumber, r.RoleType, int16(r.Status), date(r.Begin), date(r.LastDay),
			nullable(r.Cohort), nullable(r.StudentCode), nullableID(r.MappingID)}
	}
	fill(t, pool, "exp_ims_membership", []string{"instance", "course_idnumber", "user_idnumber", "roletype", "status",
		"timeframe_begin", "timeframe_end", "cohort", "student_code", "mapping_id"}, all)
}

// FillPersons replaces the content of mart.exp_ims_person.
func FillPersons(t testing.TB, pool *pgxpool.Pool, rows []Person) {
	t.Helper()
	all := make([][]any, len(rows))
	for i, r := range rows {
		all[i] = []any{r.Instance, r.UserIDNumber, r.Username, r.Auth, r.Given, r.Family, nullable(r.Email)}
	}
	fill(t, pool, "exp_ims_person", []string{"instance", "user_idnumber", "username", "auth", "given", "family", "email"}, all)
}

// FillProfiles replaces the content of mart.exp_profile_fields.
func FillProfiles(t testing.TB, pool *pgxpool.Pool, rows []Profile) {
	t.Helper()
	all := make([][]any, len(rows))
	for i, r := range rows {
		all[i] = []any{r.Instance, r.Username, nullable(r.StudentNumber), nullable(r.ProgrammeName), nullable(r.ProgrammeCode),
			nullable(r.UGPG), nullable(r.ApprovedModules), nullable(r.PreapprovalModules), nullable(r.YearLevel)}
	}
	fill(t, pool, "exp_profile_fields", []string{"instance", "username", "student_number", "programme_name", "programme_code",
		"ug_pg", "approved_modules", "preapproval_modules", "year_level"}, all)
}

// FillTutors replaces the content of mart.exp_personal_tutor.
func FillTutors(t testing.TB, pool *pgxpool.Pool, rows []TutorPair) {
	t.Helper()
	all := make([][]any, len(rows))
	for i, r := range rows {
		all[i] = []any{r.Instance, r.Role, r.Tutor, r.Student, nullable(r.StudentCode), nullable(r.TutorUPI), nullable(r.Source)}
	}
	fill(t, pool, "exp_personal_tutor", []string{"instance", "role_shortname", "tutor_idnumber", "student_idnumber",
		"student_code", "tutor_upi", "source"}, all)
}

// FillMerges replaces the content of mart.exp_merge_candidates.
func FillMerges(t testing.TB, pool *pgxpool.Pool, rows []MergeCandidate) {
	t.Helper()
	all := make([][]any, len(rows))
	for i, r := range rows {
		all[i] = []any{r.Instance, int32(r.Seq), r.FromUserID, r.ToUserID, r.FromUsername, r.ToUsername,
			nullable(r.FromIDNumber), r.ToIDNumber, r.Reason, nullable(r.KeepReason), nullable(r.Evidence)}
	}
	fill(t, pool, "exp_merge_candidates", []string{"instance", "seq", "from_userid", "to_userid", "from_username", "to_username",
		"from_idnumber", "to_idnumber", "reason", "keep_reason", "evidence"}, all)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullableID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func date(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}
