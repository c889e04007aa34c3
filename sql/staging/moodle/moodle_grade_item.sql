-- gradereport_user_get_grade_items (optional): one row per grade item of a
-- course. The raw key is <courseid>:<itemid>, which staging trusts over the
-- payload for the ids.
-- description: Moodle grade items (raw moodle/grade_items, when extracted).
-- checks: unique(instance, course_id, item_id), not_null(instance, course_id, item_id)
SELECT
    r.instance,
    ref.to_int(split_part(r.key, ':', 1))  AS course_id,
    ref.to_int(split_part(r.key, ':', 2))  AS item_id,
    ref.to_text(r.payload ->> 'itemname')     AS item_name,
    ref.to_text(r.payload ->> 'itemtype')     AS item_type,
    ref.to_text(r.payload ->> 'itemmodule')   AS item_module,
    ref.to_int(r.payload ->> 'iteminstance')  AS item_instance,
    ref.to_text(r.payload ->> 'idnumber')     AS idnumber,
    ref.to_int(r.payload ->> 'categoryid')    AS category_id,
    ref.to_num(r.payload ->> 'grademin')      AS grade_min,
    ref.to_num(r.payload ->> 'grademax')      AS grade_max,
    ref.to_num(r.payload ->> 'weightraw')     AS weight
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'grade_items' AND r.deleted_run IS NULL
