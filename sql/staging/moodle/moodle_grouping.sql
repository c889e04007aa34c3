-- core_group_get_course_groupings: one row per grouping. Its groups are in
-- stg.moodle_grouping_group.
-- description: Moodle groupings (raw moodle/groupings).
-- checks: unique(instance, grouping_id), not_null(instance, grouping_id, course_id)
-- indexes: (instance, course_id)
SELECT
    r.instance,
    ref.to_int(r.payload ->> 'id')         AS grouping_id,
    ref.to_int(r.payload ->> 'courseid')   AS course_id,
    ref.to_text(r.payload ->> 'name')      AS name,
    ref.to_text(r.payload ->> 'idnumber')  AS idnumber
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'groupings' AND r.deleted_run IS NULL
