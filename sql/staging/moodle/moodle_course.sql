-- core_course_get_courses: one row per course per site, the site's front
-- page (format 'site') included and flagged. idnumber is NULL when empty:
-- such a course cannot be fed by IMS Enterprise.
-- description: Moodle courses (raw moodle/courses).
-- checks: unique(instance, course_id), not_null(instance, course_id)
-- indexes: (instance, idnumber), (instance, course_id)
SELECT
    r.instance,
    ref.to_int(r.payload ->> 'id')                 AS course_id,
    ref.to_text(r.payload ->> 'shortname')         AS shortname,
    ref.to_text(r.payload ->> 'fullname')          AS fullname,
    ref.to_text(r.payload ->> 'idnumber')          AS idnumber,
    ref.to_int(r.payload ->> 'categoryid')         AS category_id,
    ref.to_bool(r.payload ->> 'visible')           AS visible,
    ref.to_text(r.payload ->> 'format')            AS format,
    coalesce(r.payload ->> 'format' = 'site', false) AS is_site,
    ref.to_time(r.payload ->> 'startdate')        AS start_at,
    ref.to_time(r.payload ->> 'enddate')          AS end_at,
    ref.to_bool(r.payload ->> 'enablecompletion')  AS completion_enabled,
    ref.to_int(r.payload ->> 'groupmode')          AS group_mode,
    ref.to_time(r.payload ->> 'timecreated')      AS created_at,
    ref.to_time(r.payload ->> 'timemodified')     AS modified_at
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'courses' AND r.deleted_run IS NULL
