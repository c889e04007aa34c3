-- What Moodle has: one row per site, course, enrolled user and role held in
-- the course (role NULL for a user enrolled without a role), with whether
-- the enrolment is suspended (no active enrolment of the user in the
-- course: core_enrol_get_enrolled_users with onlysuspended), any method.
-- description: Moodle course enrolments with their roles and suspension.
-- depends: stg.moodle_enrolment, stg.moodle_enrolment_role, stg.moodle_course, stg.moodle_user
-- checks: unique(instance, course_id, user_id, role_id), not_null(instance, course_id, user_id, suspended)
-- indexes: (instance, course_id, user_id)
SELECT
    e.instance, e.course_id, c.idnumber AS course_idnumber,
    e.user_id, coalesce(u.idnumber, e.user_idnumber) AS user_idnumber, coalesce(u.username, e.username) AS username,
    r.role_id, r.role_shortname,
    e.suspended, e.last_course_access_at
FROM stg.moodle_enrolment e
LEFT JOIN stg.moodle_enrolment_role r ON r.instance = e.instance AND r.course_id = e.course_id AND r.user_id = e.user_id
LEFT JOIN stg.moodle_course c ON c.instance = e.instance AND c.course_id = e.course_id
LEFT JOIN stg.moodle_user u ON u.instance = e.instance AND u.user_id = e.user_id
