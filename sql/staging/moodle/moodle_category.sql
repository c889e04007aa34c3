-- core_course_get_categories: one row per course category per site.
-- description: Moodle course categories (raw moodle/categories).
-- checks: unique(instance, category_id), not_null(instance, category_id)
SELECT
    r.instance,
    ref.jint(r.payload -> 'id')            AS category_id,
    ref.jtext(r.payload -> 'name')         AS name,
    ref.jtext(r.payload -> 'idnumber')     AS idnumber,
    ref.jint(r.payload -> 'parent')        AS parent_id,
    ref.jtext(r.payload -> 'path')         AS path,
    ref.jint(r.payload -> 'depth')         AS depth,
    ref.jint(r.payload -> 'sortorder')     AS sortorder,
    ref.jbool(r.payload -> 'visible')      AS visible,
    ref.jint(r.payload -> 'coursecount')   AS course_count,
    ref.jepoch(r.payload -> 'timemodified') AS modified_at
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'categories' AND r.deleted_run IS NULL
