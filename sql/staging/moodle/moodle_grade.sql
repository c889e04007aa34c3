-- A user's grade for a grade item (optional). The raw key is
-- <courseid>:<itemid>:<userid>. grade_raw is NULL when not graded.
-- description: Moodle grades (raw moodle/grades, when extracted).
-- checks: unique(instance, course_id, item_id, user_id), not_null(instance, course_id, item_id, user_id)
-- indexes: (instance, course_id)
SELECT
    r.instance,
    ref.jint(to_jsonb(split_part(r.key, ':', 1)))  AS course_id,
    ref.jint(to_jsonb(split_part(r.key, ':', 2)))  AS item_id,
    ref.jint(to_jsonb(split_part(r.key, ':', 3)))  AS user_id,
    ref.jnum(r.payload -> 'graderaw')              AS grade_raw,
    ref.jnum(r.payload -> 'grademin')              AS grade_min,
    ref.jnum(r.payload -> 'grademax')              AS grade_max,
    ref.jepoch(r.payload -> 'gradedategraded')     AS graded_at,
    ref.jepoch(r.payload -> 'gradedatesubmitted')  AS submitted_at,
    ref.jbool(r.payload -> 'gradeishidden')        AS hidden
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'grades' AND r.deleted_run IS NULL
