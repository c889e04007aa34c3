-- Group membership as Moodle reports it: unnested from the enrolments'
-- groups (core_enrol_get_enrolled_users lists each user's groups in the
-- course), so it is complete exactly when the course's enrolments are.
-- description: Moodle group members (raw moodle/enrolments, groups).
-- depends: stg.moodle_enrolment
-- checks: unique(instance, group_id, user_id), not_null(instance, course_id, group_id, user_id)
-- indexes: (instance, group_id)
SELECT
    e.instance,
    e.course_id,
    ref.to_int(g ->> 'id')  AS group_id,
    e.user_id
FROM stg.moodle_enrolment e
CROSS JOIN LATERAL jsonb_array_elements(e.groups_json) g
