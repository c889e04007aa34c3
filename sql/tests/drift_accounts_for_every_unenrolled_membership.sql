-- description: every IMS membership whose account holds no active enrolment
-- description: with its role in the course (read from staging) is in the drift
-- description: as missing or suspended, so the drift report misses nothing the
-- description: feed will try to change. An enrolment Moodle reports not active
-- description: because the timeframe MIM published for it has not begun or has
-- description: ended is the feed working, and is not drift.
-- depends: mart.exp_ims_membership, mart.enrolment_drift, stg.moodle_enrolment, stg.moodle_enrolment_role
-- The query is a MATERIALIZED CTE so that it is planned for all its rows:
-- the runner reads a test through LIMIT, which otherwise steers the planner
-- to nested loops that never finish at scale.
WITH failing AS MATERIALIZED (
    SELECT x.instance, x.course_idnumber, x.user_idnumber, x.role
    FROM mart.exp_ims_membership x
    WHERE NOT EXISTS (
            SELECT 1 FROM stg.moodle_enrolment e
            JOIN stg.moodle_enrolment_role r ON r.instance = e.instance AND r.course_id = e.course_id AND r.user_id = e.user_id
            WHERE e.instance = x.instance AND e.course_id = x.course_id AND e.user_id = x.user_id
              AND r.role_shortname = x.role AND NOT e.suspended)
      AND NOT EXISTS (
            SELECT 1 FROM mart.enrolment_drift d
            WHERE d.instance = x.instance AND d.course_id = x.course_id AND d.user_id = x.user_id AND d.role = x.role
              AND d.kind IN ('missing', 'suspended'))
      AND NOT EXISTS (
            SELECT 1 FROM ctl.published_membership p
            WHERE p.instance = x.instance AND p.course_idnumber = x.course_idnumber
              AND p.user_idnumber = x.user_idnumber AND p.roletype = x.roletype AND p.status = 1
              AND (p.timeframe_begin > current_date OR p.timeframe_end < current_date))
)
SELECT * FROM failing
