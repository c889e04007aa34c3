-- Group membership as Moodle reports it: unnested from the enrolments'
-- groups (core_enrol_get_enrolled_users lists each user's groups in the
-- course), so it is complete exactly when the course's enrolments are.
-- description: Moodle group members (raw moodle/enrolments, groups).
-- checks: unique(instance, group_id, user_id), not_null(instance, course_id, group_id, user_id)
-- indexes: (instance, group_id)
SELECT
    r.instance,
    coalesce(ref.jint(r.payload -> 'mim_courseid'), ref.jint(to_jsonb(split_part(r.key, ':', 1)))) AS course_id,
    ref.jint(g -> 'id')             AS group_id,
    ref.jint(r.payload -> 'id')     AS user_id
FROM raw.record r
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(r.payload -> 'groups') = 'array' THEN r.payload -> 'groups' ELSE '[]' END) g
WHERE r.source = 'moodle' AND r.entity = 'enrolments' AND r.deleted_run IS NULL
