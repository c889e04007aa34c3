-- core_course_get_categories: one row per course category per site.
-- description: Moodle course categories (raw moodle/categories).
-- checks: unique(instance, category_id), not_null(instance, category_id)
SELECT
    r.instance,
    ref.to_int(r.payload ->> 'id')            AS category_id,
    ref.to_text(r.payload ->> 'name')         AS name,
    ref.to_text(r.payload ->> 'idnumber')     AS idnumber,
    ref.to_int(r.payload ->> 'parent')        AS parent_id,
    ref.to_text(r.payload ->> 'path')         AS path,
    ref.to_int(r.payload ->> 'depth')         AS depth,
    ref.to_int(r.payload ->> 'sortorder')     AS sortorder,
    ref.to_bool(r.payload ->> 'visible')      AS visible,
    ref.to_int(r.payload ->> 'coursecount')   AS course_count,
    ref.to_time(r.payload ->> 'timemodified') AS modified_at
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'categories' AND r.deleted_run IS NULL
