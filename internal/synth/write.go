package synth

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// schemaMark starts the comment on every schema synth creates: it drops and
// recreates only schemas that carry it.
const schemaMark = "mim synth:"

var prefixPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,40}$`)

// Schemas are the PostgreSQL schemas Write creates for a prefix: the SITS
// views' owner (sources.sits.schema) and the CMIS views' owner
// (sources.cmis.schema). With no prefix they are sismgr and moodlemgr, which
// is what the example configuration's SISMGR and MOODLEMGR fold to.
func Schemas(prefix string) (sits, cmis string) { return prefix + "sismgr", prefix + "moodlemgr" }

// CheckPrefix validates a schema prefix: lower-case letters, digits and _,
// starting with a letter, or empty.
func CheckPrefix(prefix string) error {
	if prefix != "" && !prefixPattern.MatchString(prefix) {
		return fmt.Errorf("schema prefix %q must be lower-case letters, digits and _, starting with a letter", prefix)
	}
	return nil
}

// TableCount is how many rows Write put in one table.
type TableCount struct {
	Table string // schema.table
	Rows  int64
}

// table is one table Write creates and fills.
type table struct {
	schema, name, ddl string
	columns           []string
	rows              int
	row               func(i int) []any
}

func nz(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func dateOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func numeric(s string) any {
	var n pgtype.Numeric
	if err := n.Scan(s); err != nil {
		panic("synth: bad number " + s) // generated values are numbers
	}
	return n
}

func (in *Institution) tables(prefix string) []table {
	sits, cmis := Schemas(prefix)
	v := "ucl_bdo_v_moodle_"
	return []table{
		{sits, v + "faculties", `dpt_fac_code varchar(12) NOT NULL, dpt_fac_name varchar(250)`,
			[]string{"dpt_fac_code", "dpt_fac_name"}, len(in.Faculties), func(i int) []any {
				f := in.Faculties[i]
				return []any{f.Code, f.Name}
			}},
		{sits, v + "department", `dpt_bdo_id varchar(50), dpt_code varchar(12) NOT NULL, dpt_name varchar(250), dpt_fac_code varchar(6)`,
			[]string{"dpt_bdo_id", "dpt_code", "dpt_name", "dpt_fac_code"}, len(in.Departments), func(i int) []any {
				d := in.Departments[i]
				return []any{d.BDOID, d.Code, d.Name, nz(d.FacCode)}
			}},
		{sits, v + "programme", `prog_code varchar(12) NOT NULL, prog_name varchar(250), dpt_bdo_id varchar(50), ioe_sessions varchar(10)`,
			[]string{"prog_code", "prog_name", "dpt_bdo_id", "ioe_sessions"}, len(in.Programmes), func(i int) []any {
				p := in.Programmes[i]
				return []any{p.Code, p.Name, p.DptBDOID, p.IOESessions}
			}},
		{sits, v + "route", `route_code varchar(12) NOT NULL, route_name varchar(250), prog_code varchar(12), dpt_bdo_id varchar(50), ioe_sessions varchar(10)`,
			[]string{"route_code", "route_name", "prog_code", "dpt_bdo_id", "ioe_sessions"}, len(in.Routes), func(i int) []any {
				r := in.Routes[i]
				return []any{r.Code, r.Name, r.ProgCode, r.DptBDOID, r.IOESessions}
			}},
		{sits, v + "student", `student_code varchar(12) NOT NULL, username varchar(50), upi varchar(50), firstname varchar(30),
			surname varchar(40), student_name varchar(100), email varchar(255), dpt_bdo_id varchar(50),
			personal_tutor varchar(12), enrolment_status varchar(6), course_join_status varchar(6)`,
			[]string{"student_code", "username", "upi", "firstname", "surname", "student_name", "email", "dpt_bdo_id",
				"personal_tutor", "enrolment_status", "course_join_status"}, len(in.Students), func(i int) []any {
				s := in.Students[i]
				return []any{s.Code, s.Username, s.UPI, nz(s.FirstName), s.Surname, s.Name, nz(s.Email), s.DptBDOID,
					nz(s.PersonalTutor), s.EnrolmentStatus, s.JoinStatus}
			}},
		{sits, v + "assignment", `student_code varchar(12) NOT NULL, route_code varchar(12), prog_code varchar(12), dpt_bdo_id varchar(50),
			dpt_fac_code varchar(12), post_undergrad varchar(2), course_year varchar(2)`,
			[]string{"student_code", "route_code", "prog_code", "dpt_bdo_id", "dpt_fac_code", "post_undergrad", "course_year"},
			len(in.Assignments), func(i int) []any {
				a := in.Assignments[i]
				return []any{a.StudentCode, a.RouteCode, a.ProgCode, a.DptBDOID, nz(a.FacCode), a.PostUndergrad, a.CourseYear}
			}},
		// MOD_CODE is CHAR(12) here, blank-padded, as some SITS views have it.
		{sits, v + "module_inst", `mod_inst_bdo_id varchar(50) NOT NULL, mod_bdo_id varchar(50), mod_code char(12) NOT NULL, mod_name varchar(120),
			mod_dpt_bdo_id varchar(50), mod_year_code varchar(12), mod_credits numeric, mod_leader_upi varchar(12)`,
			[]string{"mod_inst_bdo_id", "mod_bdo_id", "mod_code", "mod_name", "mod_dpt_bdo_id", "mod_year_code", "mod_credits", "mod_leader_upi"},
			len(in.ModuleInstances), func(i int) []any {
				m := in.ModuleInstances[i]
				return []any{m.BDOID, m.ModBDOID, m.ModCode, m.ModName, m.DptBDOID, m.YearCode, numeric(m.Credits), nz(m.LeaderUPI)}
			}},
		{sits, v + "module_struc", `mod_occ_bdo_id varchar(50) NOT NULL, mod_inst_bdo_id varchar(50), mod_code varchar(12) NOT NULL,
			mod_occ_psl_code varchar(6), mod_occ_mav varchar(6), mod_occ_year_code varchar(12), mod_occ_name varchar(120),
			mod_occ_start_date date, mod_occ_end_date date`,
			[]string{"mod_occ_bdo_id", "mod_inst_bdo_id", "mod_code", "mod_occ_psl_code", "mod_occ_mav", "mod_occ_year_code",
				"mod_occ_name", "mod_occ_start_date", "mod_occ_end_date"}, len(in.Occurrences), func(i int) []any {
				o := in.Occurrences[i]
				return []any{o.BDOID, o.InstBDOID, o.ModCode, o.PSL, o.MAV, o.YearCode, o.Name, dateOrNull(o.Start), dateOrNull(o.End)}
			}},
		{sits, v + "student_enrl", `student_code varchar(12) NOT NULL, mod_occ_bdo_id varchar(50) NOT NULL, mod_dpt_bdo_id varchar(50),
			reg_status varchar(3), smo_sms varchar(3), spr_code varchar(12)`,
			[]string{"student_code", "mod_occ_bdo_id", "mod_dpt_bdo_id", "reg_status", "smo_sms", "spr_code"},
			len(in.Registrations), func(i int) []any {
				r := in.Registrations[i]
				return []any{r.StudentCode, r.OccBDOID, r.ModDptBDOID, r.RegStatus, r.SMOSMS, r.SPRCode}
			}},
		{cmis, "cmis_moodle_v_module_group", `group_bdo_id varchar(50) NOT NULL, mod_occ_bdo_id varchar(50), group_id varchar(24),
			group_code varchar(10), group_name varchar(30), mod_code varchar(12), inst_code varchar(10), setid varchar(10),
			group_num numeric, capacity numeric`,
			[]string{"group_bdo_id", "mod_occ_bdo_id", "group_id", "group_code", "group_name", "mod_code", "inst_code", "setid",
				"group_num", "capacity"}, len(in.Groups), func(i int) []any {
				g := in.Groups[i]
				return []any{g.BDOID, g.OccBDOID, g.GroupID, g.Code, g.Name, g.ModCode, g.InstCode, g.SetID,
					numeric(strconv.Itoa(g.Num)), numeric(strconv.Itoa(g.Capacity))}
			}},
		{cmis, "cmis_moodle_v_group_member", `group_bdo_id varchar(50) NOT NULL, student_code varchar(12) NOT NULL, mod_occ_bdo_id varchar(50), setid varchar(10)`,
			[]string{"group_bdo_id", "student_code", "mod_occ_bdo_id", "setid"}, len(in.GroupMembers), func(i int) []any {
				m := in.GroupMembers[i]
				return []any{m.GroupBDOID, m.StudentCode, m.OccBDOID, m.SetID}
			}},
		{cmis, "cmis_moodle_v_group_tutor", `group_bdo_id varchar(50) NOT NULL, staff_upi varchar(12) NOT NULL, lecturer_id varchar(10)`,
			[]string{"group_bdo_id", "staff_upi", "lecturer_id"}, len(in.GroupTutors), func(i int) []any {
				t := in.GroupTutors[i]
				return []any{t.GroupBDOID, t.StaffUPI, t.LecturerID}
			}},
	}
}

// Write creates the SITS and CMIS schemas for prefix (see Schemas) in the
// database of pool and fills them with COPY, in one transaction: the views
// are tables of the same name and columns (lower case, as PostgreSQL folds
// the extractor's unquoted upper-case names). Schemas synth created before
// are dropped and recreated; a schema of that name that synth did not create
// is left alone and Write fails. progress, if not nil, is told each table as
// it is written.
func (in *Institution) Write(ctx context.Context, pool *pgxpool.Pool, prefix string, progress func(TableCount)) ([]TableCount, error) {
	if err := CheckPrefix(prefix); err != nil {
		return nil, err
	}
	sits, cmis := Schemas(prefix)
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("writing the synthetic institution: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	comment := fmt.Sprintf("%s synthetic %%s views, scale %s, seed %d, year %d", schemaMark, in.Scale, in.Seed, in.Year)
	for _, s := range []struct{ name, what string }{{sits, "SITS"}, {cmis, "CMIS"}} {
		var note *string
		err := tx.QueryRow(ctx, `SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1`, s.name).Scan(&note)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return nil, fmt.Errorf("looking for schema %s: %w", s.name, err)
		case note == nil || !strings.HasPrefix(*note, schemaMark):
			return nil, fmt.Errorf("schema %s exists and was not created by mim synth; refusing to drop it (choose another --schema-prefix)", s.name)
		}
		id := pgx.Identifier{s.name}.Sanitize()
		for _, stmt := range []string{
			`DROP SCHEMA IF EXISTS ` + id + ` CASCADE`,
			`CREATE SCHEMA ` + id,
			`COMMENT ON SCHEMA ` + id + ` IS ` + quote(fmt.Sprintf(comment, s.what)),
		} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return nil, fmt.Errorf("preparing schema %s: %w", s.name, err)
			}
		}
	}
	var counts []TableCount
	for _, t := range in.tables(prefix) {
		name := pgx.Identifier{t.schema, t.name}
		if _, err := tx.Exec(ctx, `CREATE TABLE `+name.Sanitize()+` (`+t.ddl+`)`); err != nil {
			return nil, fmt.Errorf("creating %s.%s: %w", t.schema, t.name, err)
		}
		n, err := tx.CopyFrom(ctx, name, t.columns, pgx.CopyFromSlice(t.rows, func(i int) ([]any, error) { return t.row(i), nil }))
		if err != nil {
			return nil, fmt.Errorf("copying into %s.%s: %w", t.schema, t.name, err)
		}
		c := TableCount{Table: t.schema + "." + t.name, Rows: n}
		counts = append(counts, c)
		if progress != nil {
			progress(c)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("committing the synthetic institution: %w", err)
	}
	// Statistics, so the extractor's queries are planned on real sizes.
	for _, t := range in.tables(prefix) {
		if _, err := pool.Exec(ctx, `ANALYZE `+pgx.Identifier{t.schema, t.name}.Sanitize()); err != nil {
			return counts, fmt.Errorf("analyzing %s.%s: %w", t.schema, t.name, err)
		}
	}
	return counts, nil
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
