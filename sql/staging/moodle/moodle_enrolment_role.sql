-- The roles of each enrolled user in a course, unnested from the
-- enrolments' roles (a user may hold several).
-- description: Moodle role assignments in courses (raw moodle/enrolments, roles).
-- checks: unique(instance, course_id, user_id, role_id), not_null(instance, course_id, user_id, role_id)
-- indexes: (instance, course_id, user_id)
SELECT
    r.instance,
    coalesce(ref.jint(r.payload -> 'mim_courseid'), ref.jint(to_jsonb(split_part(r.key, ':', 1)))) AS course_id,
    ref.jint(r.payload -> 'id')        AS user_id,
    ref.jint(x -> 'roleid')            AS role_id,
    ref.jtext(x -> 'shortname')        AS role_shortname
FROM raw.record r
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(r.payload -> 'roles') = 'array' THEN r.payload -> 'roles' ELSE '[]' END) x
WHERE r.source = 'moodle' AND r.entity = 'enrolments' AND r.deleted_run IS NULL
