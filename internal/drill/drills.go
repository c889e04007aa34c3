package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/internal/config"
	"github.com/mimwarehouse/mim/internal/ledger"
	"github.com/mimwarehouse/mim/internal/warehouse"
	"github.com/mimwarehouse/mim/load"
	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// Drills is every drill, in the order a session runs them. It is a plain
// list: a new disaster is one more entry here.
func Drills() []Drill {
	return []Drill{
		{
			Name:     "members-emptied",
			Disaster: "CMIS group member view comes back empty",
			Stage:    sql(`DELETE FROM moodlemgr.cmis_moodle_v_group_member`),
		},
		{
			Name:     "users-empty",
			Disaster: "Moodle lists no user, and no warning",
			Stage: func(ctx context.Context, w *World) error {
				w.Sites[w.base.order[0]].Inject(moodletest.Fault{Function: "core_user_get_users", Body: `{"users":[],"warnings":[]}`})
				return nil
			},
		},
		{
			Name:      "unreadable-row",
			Disaster:  "one SITS student's name is not UTF-8",
			Stage:     unreadableStudent,
			Contained: badRowKept,
		},
		{
			Name:     "sits-shrink",
			Disaster: "SITS loses 30% of module registrations",
			Stage: sql(`DELETE FROM sismgr.ucl_bdo_v_moodle_student_enrl
				WHERE abs(hashtext(student_code || '|' || mod_occ_bdo_id)) % 10 < 3`),
		},
		{
			Name:     "course-emptied",
			Disaster: "every student of one course deregistered",
			Stage:    emptyLargestCourse,
		},
		{
			Name:     "groups-deleted",
			Disaster: "most CMIS timetable groups vanish",
			Stage:    sql(deleteMostGroups),
		},
		{
			Name:     "staging-to-production",
			Disaster: "staging MIM configured with production's sites",
			Claim:    "staging",
			Stage: func(ctx context.Context, w *World) error {
				// Staging's data differs from production's: here its
				// timetable lacks most groups, so the plan would delete them.
				return sql(deleteMostGroups)(ctx, w)
			},
		},
		{
			Name:      "restored-production",
			Disaster:  "restored production warehouse, copied config",
			Unclaimed: true,
			Stage:     sql(deleteMostGroups),
		},
		{
			Name:      "max-input-vars",
			Disaster:  "PHP cuts a group write short, Moodle answers OK",
			Writes:    true,
			Stage:     lowInputVars,
			Contained: voidWritesSentAgain,
		},
	}
}

// inputVarsLimit is the drill's PHP max_input_vars: PHP keeps 41
// variables of a request, so an add_group_members of 25 members (53
// variables) loses its last 6, while every read the night makes fits.
const inputVarsLimit = 40

// lowInputVars gives the group-sync site a PHP max_input_vars far below
// the 900 variables MIM is configured to send, and has CMIS put every
// student of one group-sync course in one of its groups, so the night
// writes members in full batches.
func lowInputVars(ctx context.Context, w *World) error {
	var site, group, course, idnumber string
	var courseID int64
	err := w.Pool.QueryRow(ctx, `SELECT instance, group_bdo_id, course_idnumber, group_idnumber, courseid FROM mart.exp_group_target
		GROUP BY 1, 2, 3, 4, 5 ORDER BY count(*) OVER (PARTITION BY instance, courseid) DESC, 1, 2 LIMIT 1`).Scan(&site, &group, &course, &idnumber, &courseID)
	if err != nil {
		return fmt.Errorf("choosing the group: %w", err)
	}
	// CMIS writes an 8-digit SITS code with a padding zero.
	tag, err := w.Pool.Exec(ctx, `INSERT INTO moodlemgr.cmis_moodle_v_group_member (group_bdo_id, student_code, mod_occ_bdo_id, setid)
		SELECT $1, CASE WHEN p.user_idnumber ~ '^[0-9]{8}$' THEN '0' || p.user_idnumber ELSE p.user_idnumber END, g.mod_occ_bdo_id, g.setid
		FROM ctl.published_membership p
		CROSS JOIN (SELECT mod_occ_bdo_id, setid FROM moodlemgr.cmis_moodle_v_group_member WHERE group_bdo_id = $1 LIMIT 1) g
		WHERE p.instance = $2 AND p.course_idnumber = $3 AND p.roletype = '01' AND p.status = 1
		  AND p.user_idnumber NOT IN (SELECT user_idnumber FROM mart.exp_group_target
			WHERE instance = $2 AND group_bdo_id = $1 AND user_idnumber IS NOT NULL)`, group, site, course)
	if err != nil {
		return fmt.Errorf("adding CMIS members to group %s: %w", group, err)
	}
	if tag.RowsAffected() < 25 {
		return fmt.Errorf("course %s has only %d students to add to group %s: the drill needs a full batch", course, tag.RowsAffected(), group)
	}
	sim, ok := w.Sites[site]
	if !ok {
		return fmt.Errorf("no simulated site %s", site)
	}
	sim.SetMaxInputVars(inputVarsLimit)
	w.site, w.group, w.groupCourse, w.writes = site, idnumber, courseID, int(tag.RowsAffected())
	return nil
}

// voidWritesSentAgain checks that the writes PHP cut short were found by
// re-reading Moodle, recorded, sent again and took, that Moodle's groups
// now match the plan, and that the night did not call itself a success.
func voidWritesSentAgain(ctx context.Context, w *World, runID int64) (string, bool, error) {
	var void, retried, took int
	err := w.Pool.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE outcome = 'void' AND NOT retry),
			count(*) FILTER (WHERE retry),
			count(*) FILTER (WHERE retry AND outcome = 'applied')
		FROM ctl.group_sync_action WHERE run_id = $1 AND instance = $2`, runID, w.site).Scan(&void, &retried, &took)
	if err != nil {
		return "", false, err
	}
	run, err := ledger.RunByID(ctx, w.Pool, runID)
	if err != nil {
		return "", false, err
	}
	status := run.Status
	// Moodle's group now holds every member the warehouse wants.
	var want []int64
	rows, err := w.Pool.Query(ctx, `SELECT userid FROM mart.exp_group_target
		WHERE instance = $1 AND courseid = $2 AND group_idnumber = $3 AND userid IS NOT NULL ORDER BY 1`, w.site, w.groupCourse, w.group)
	if err == nil {
		want, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	}
	if err != nil {
		return "", false, err
	}
	var have []int64
	for _, g := range w.Sites[w.site].Snapshot().Groups {
		if g.CourseID == w.groupCourse && g.IDNumber == w.group {
			have = slices.Sorted(slices.Values(g.Members))
		}
	}
	if void == 0 || retried != void || took != void || status == ledger.Succeeded || !slices.Equal(have, want) {
		return "", false, nil
	}
	return fmt.Sprintf("write verification: %d of %d new members not in Moodle, sent again, all took; the night is %s",
		void, w.writes, status), true, nil
}

// quietNight breaks nothing: the night every drill is measured against
// must itself write nothing and refuse nothing.
func quietNight() Drill {
	return Drill{Name: "quiet-night", Disaster: "nothing broken: the baseline"}
}

// sql stages a disaster with statements on the drill's warehouse copy
// (which holds the synthetic SITS and CMIS views).
func sql(statements ...string) func(ctx context.Context, w *World) error {
	return func(ctx context.Context, w *World) error {
		for _, s := range statements {
			tag, err := w.Pool.Exec(ctx, s)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return fmt.Errorf("the disaster changed nothing: %s", s)
			}
		}
		return nil
	}
}

// deleteMostGroups takes out of CMIS every timetable group of the
// group-sync courses but the first of each course.
const deleteMostGroups = `DELETE FROM moodlemgr.cmis_moodle_v_module_group WHERE group_bdo_id IN (
	SELECT group_bdo_id FROM (
		SELECT group_bdo_id, row_number() OVER (PARTITION BY instance, courseid ORDER BY group_bdo_id) AS n
		FROM (SELECT DISTINCT instance, courseid, group_bdo_id FROM mart.exp_group_target) t) g
	WHERE n > 1)`

// emptyLargestCourse removes the registrations of the module occurrence
// mapped to the course with most published students.
func emptyLargestCourse(ctx context.Context, w *World) error {
	var course, key string
	err := w.Pool.QueryRow(ctx, `SELECT m.course_idnumber, m.sis_key FROM ctl.course_mapping m
		JOIN ctl.published_membership p ON p.instance = m.instance AND p.course_idnumber = m.course_idnumber
		WHERE m.active AND m.sis_kind = 'module_occurrence' AND p.roletype = '01' AND p.status = 1
		GROUP BY 1, 2 ORDER BY count(*) DESC, 1 LIMIT 1`).Scan(&course, &key)
	if err != nil {
		return fmt.Errorf("choosing the course: %w", err)
	}
	tag, err := w.Pool.Exec(ctx, `DELETE FROM sismgr.ucl_bdo_v_moodle_student_enrl WHERE mod_occ_bdo_id = $1
		OR mod_occ_bdo_id IN (SELECT mod_occ_bdo_id FROM stg.sits_module_struc WHERE occ_key = $1)`, key)
	if err == nil && tag.RowsAffected() == 0 {
		err = fmt.Errorf("course %s (occurrence %s) has no registration to remove", course, key)
	}
	return err
}

// unreadableStudent moves SITS into a database that, like an Oracle
// database in a legacy character set, can hold text that is not UTF-8, and
// breaks the name of the student with the most published enrolments there.
func unreadableStudent(ctx context.Context, w *World) error {
	dsn, err := w.scratchDatabase(ctx, "sits", `ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`)
	if err != nil {
		return err
	}
	pool, err := warehouse.Open(ctx, config.DSN(dsn), 4)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := w.In.Write(ctx, pool, "", nil); err != nil {
		return err
	}
	var code string
	var courses int
	if err := w.Pool.QueryRow(ctx, `SELECT user_idnumber, count(*) FROM ctl.published_membership
		WHERE roletype = '01' AND status = 1 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1`).Scan(&code, &courses); err != nil {
		return fmt.Errorf("choosing the student: %w", err)
	}
	tag, err := pool.Exec(ctx, `UPDATE sismgr.ucl_bdo_v_moodle_student SET student_name = E'Jos\xe9 ' || surname WHERE student_code = $1`, code)
	if err != nil || tag.RowsAffected() != 1 {
		return fmt.Errorf("breaking student %s: %v", code, err)
	}
	w.student, w.studentCourses = code, courses
	w.Cfg.Sources.SITS.DSN = config.DSN(dsn)
	return nil
}

// badRowKept checks that the student's unreadable row kept its last good
// version: it was reported, its key is live in raw, and every enrolment
// Moodle was told of stands.
func badRowKept(ctx context.Context, w *World, runID int64) (string, bool, error) {
	reported, kept, err := badStudentRows(ctx, w, runID)
	if err != nil {
		return "", false, err
	}
	live, err := load.IsLive(ctx, w.Pool, extract.EntityID{Source: "sits", Instance: "sits", Entity: "student"}, w.student)
	if err != nil {
		return "", false, err
	}
	var courses int
	err = w.Pool.QueryRow(ctx, `SELECT count(*) FROM ctl.published_membership WHERE user_idnumber = $1 AND roletype = '01' AND status = 1`,
		w.student).Scan(&courses)
	if err != nil {
		return "", false, err
	}
	if !reported || !live || !kept || courses != w.studentCourses {
		return "", false, nil
	}
	return fmt.Sprintf("the loader kept student %s's last good row (%d enrolments stand)", w.student, courses), true, nil
}

// badStudentRows says whether the run's SITS student step reported rows it
// could not read, and whether it kept their keys' last good versions.
func badStudentRows(ctx context.Context, w *World, runID int64) (reported, kept bool, err error) {
	steps, err := ledger.Steps(ctx, w.Pool, runID)
	if err != nil {
		return false, false, err
	}
	for _, s := range steps {
		if s.Key.Source != "sits" || s.Key.Entity != "student" {
			continue
		}
		var detail struct {
			KeptBadKeys int `json:"kept_bad_keys"`
		}
		if err := json.Unmarshal(s.Detail, &detail); err != nil {
			return false, false, fmt.Errorf("reading the detail of step %s: %w", s.Key, err)
		}
		reported = reported || s.Counts.Errors > 0
		kept = kept || detail.KeptBadKeys > 0
	}
	return reported, kept, nil
}
