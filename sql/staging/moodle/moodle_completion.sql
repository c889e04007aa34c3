-- core_enrol_get_users_courses (optional): a user's completion and progress
-- in a course. The raw key is <userid>:<courseid>.
-- description: Moodle course completion (raw moodle/completion, when extracted).
-- checks: unique(instance, user_id, course_id), not_null(instance, user_id, course_id)
SELECT
    r.instance,
    ref.to_int(split_part(r.key, ':', 1))  AS user_id,
    ref.to_int(split_part(r.key, ':', 2))  AS course_id,
    ref.to_bool(r.payload ->> 'completed')            AS completed,
    ref.to_num(r.payload ->> 'progress')              AS progress,
    ref.to_time(r.payload ->> 'lastaccess')          AS last_access_at
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'completion' AND r.deleted_run IS NULL
