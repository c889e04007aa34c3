-- core_group_get_course_groups: one row per group. MIM owns only groups
-- whose idnumber starts with the site's group prefix (decided in the marts).
-- description: Moodle groups (raw moodle/groups).
-- checks: unique(instance, group_id), not_null(instance, group_id, course_id)
-- indexes: (instance, course_id)
SELECT
    r.instance,
    ref.to_int(r.payload ->> 'id')             AS group_id,
    ref.to_int(r.payload ->> 'courseid')       AS course_id,
    ref.to_text(r.payload ->> 'name')          AS name,
    ref.to_text(r.payload ->> 'idnumber')      AS idnumber,
    ref.to_int(r.payload ->> 'visibility')     AS visibility,
    ref.to_bool(r.payload ->> 'participation') AS participation
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'groups' AND r.deleted_run IS NULL
