-- The roles of each enrolled user in a course, unnested from the
-- enrolments' roles (a user may hold several).
-- description: Moodle role assignments in courses (raw moodle/enrolments, roles).
-- depends: stg.moodle_enrolment
-- checks: unique(instance, course_id, user_id, role_id), not_null(instance, course_id, user_id, role_id)
-- indexes: (instance, course_id, user_id)
SELECT
    e.instance,
    e.course_id,
    e.user_id,
    ref.to_int(x ->> 'roleid')       AS role_id,
    ref.to_text(x ->> 'shortname')   AS role_shortname
FROM stg.moodle_enrolment e
CROSS JOIN LATERAL jsonb_array_elements(e.roles_json) x
