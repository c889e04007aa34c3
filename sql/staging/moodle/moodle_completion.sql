-- core_enrol_get_users_courses (optional): a user's completion and progress
-- in a course. The raw key is <userid>:<courseid>.
-- description: Moodle course completion (raw moodle/completion, when extracted).
-- checks: unique(instance, user_id, course_id), not_null(instance, user_id, course_id)
SELECT
    r.instance,
    ref.jint(to_jsonb(split_part(r.key, ':', 1)))  AS user_id,
    ref.jint(to_jsonb(split_part(r.key, ':', 2)))  AS course_id,
    ref.jbool(r.payload -> 'completed')            AS completed,
    ref.jnum(r.payload -> 'progress')              AS progress,
    ref.jepoch(r.payload -> 'lastaccess')          AS last_access_at
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'completion' AND r.deleted_run IS NULL
