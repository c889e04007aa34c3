-- Every Moodle course of every site (not the front page) with its
-- mappings: how many, how many active, their kinds, whether one syncs
-- groups, and whether another course of the site has the same idnumber.
-- description: Moodle courses per site with their course mappings.
-- depends: stg.moodle_course, int.moodle_course_idnumber
-- checks: unique(instance, course_id), not_null(instance, course_id, mappings, active_mappings, group_sync)
-- indexes: (instance, course_idnumber)
WITH mapping AS (
    SELECT instance, course_idnumber,
        count(*)::int AS mappings,
        (count(*) FILTER (WHERE active))::int AS active_mappings,
        array_agg(DISTINCT sis_kind ORDER BY sis_kind) FILTER (WHERE active) AS active_kinds,
        bool_or(active AND group_sync) AS group_sync
    FROM ctl.course_mapping
    GROUP BY instance, course_idnumber
)
SELECT
    c.instance, c.course_id, c.idnumber AS course_idnumber, c.shortname, c.fullname, c.category_id, c.visible,
    c.start_at, c.end_at,
    coalesce(k.courses, 0) AS idnumber_courses,
    coalesce(m.mappings, 0) AS mappings,
    coalesce(m.active_mappings, 0) AS active_mappings,
    m.active_kinds,
    coalesce(m.group_sync, false) AS group_sync
FROM stg.moodle_course c
LEFT JOIN int.moodle_course_idnumber k ON k.instance = c.instance AND k.idnumber = c.idnumber
LEFT JOIN mapping m ON m.instance = c.instance AND m.course_idnumber = c.idnumber
WHERE NOT c.is_site
