-- The IMS Enterprise feed's memberships (docs/contracts.md §2): the
-- complete target of each site, one row per course, user and IMS roletype,
-- status 1. Only active mappings (the target has no other), only courses
-- and users that exist exactly once on the site (course_status and
-- user_status one), only roles with an IMS roletype (exports.ims_roles).
-- Two MIM roles with one roletype make one row. timeframe_begin and
-- timeframe_end are the first and last day, inclusive (NULL: no limit);
-- export/ims writes <end> as the day after. cohort is not used (CMIS groups
-- go through group sync). role and the ids are for the reader.
-- description: IMS Enterprise memberships per site (the complete target).
-- depends: mart.fct_enrolment_target
-- checks: unique(instance, course_idnumber, user_idnumber, roletype)
-- checks: not_null(instance, course_idnumber, user_idnumber, roletype, status, mapping_id, course_id, user_id)
-- checks: accepted_values(roletype, '01', '02', '03', '04', '05', '06', '07', '08'), accepted_values(status, '0', '1')
-- indexes: (instance, course_idnumber, user_idnumber)
SELECT
    t.instance, t.course_idnumber, t.user_idnumber, t.roletype,
    1::smallint AS status,
    CASE WHEN bool_or(t.timeframe_begin IS NULL) THEN NULL ELSE min(t.timeframe_begin) END AS timeframe_begin,
    CASE WHEN bool_or(t.timeframe_end IS NULL) THEN NULL ELSE max(t.timeframe_end) END AS timeframe_end,
    NULL::text AS cohort,
    min(t.student_code) AS student_code,
    min(t.mapping_id) AS mapping_id,
    min(t.role) AS role,
    min(t.course_id) AS course_id,
    min(t.user_id) AS user_id
FROM mart.fct_enrolment_target t
WHERE t.course_status = 'one' AND t.user_status = 'one' AND t.roletype IS NOT NULL
GROUP BY t.instance, t.course_idnumber, t.user_idnumber, t.roletype
