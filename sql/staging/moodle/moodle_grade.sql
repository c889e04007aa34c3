-- A user's grade for a grade item (optional). The raw key is
-- <courseid>:<itemid>:<userid>. grade_raw is NULL when not graded.
-- description: Moodle grades (raw moodle/grades, when extracted).
-- checks: unique(instance, course_id, item_id, user_id), not_null(instance, course_id, item_id, user_id)
-- indexes: (instance, course_id)
SELECT
    r.instance,
    ref.to_int(split_part(r.key, ':', 1))  AS course_id,
    ref.to_int(split_part(r.key, ':', 2))  AS item_id,
    ref.to_int(split_part(r.key, ':', 3))  AS user_id,
    ref.to_num(r.payload ->> 'graderaw')              AS grade_raw,
    ref.to_num(r.payload ->> 'grademin')              AS grade_min,
    ref.to_num(r.payload ->> 'grademax')              AS grade_max,
    ref.to_time(r.payload ->> 'gradedategraded')     AS graded_at,
    ref.to_time(r.payload ->> 'gradedatesubmitted')  AS submitted_at,
    ref.to_bool(r.payload ->> 'gradeishidden')        AS hidden
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'grades' AND r.deleted_run IS NULL
