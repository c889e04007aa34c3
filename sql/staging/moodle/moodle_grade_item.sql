-- gradereport_user_get_grade_items (optional): one row per grade item of a
-- course. The raw key is <courseid>:<itemid>, which staging trusts over the
-- payload for the ids.
-- description: Moodle grade items (raw moodle/grade_items, when extracted).
-- checks: unique(instance, course_id, item_id), not_null(instance, course_id, item_id)
SELECT
    r.instance,
    ref.jint(to_jsonb(split_part(r.key, ':', 1)))  AS course_id,
    ref.jint(to_jsonb(split_part(r.key, ':', 2)))  AS item_id,
    ref.jtext(r.payload -> 'itemname')     AS item_name,
    ref.jtext(r.payload -> 'itemtype')     AS item_type,
    ref.jtext(r.payload -> 'itemmodule')   AS item_module,
    ref.jint(r.payload -> 'iteminstance')  AS item_instance,
    ref.jtext(r.payload -> 'idnumber')     AS idnumber,
    ref.jint(r.payload -> 'categoryid')    AS category_id,
    ref.jnum(r.payload -> 'grademin')      AS grade_min,
    ref.jnum(r.payload -> 'grademax')      AS grade_max,
    ref.jnum(r.payload -> 'weightraw')     AS weight
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'grade_items' AND r.deleted_run IS NULL
