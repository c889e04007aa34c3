-- UCL_BDO_V_MOODLE_ASSIGNMENT: a student's association with a route,
-- programme, department and faculty, with UG/PG and year of study (not an
-- assessment). A student may have several. year_of_study is the leading
-- number of course_year ('1A' -> 1), used by programme/department mappings.
-- description: SITS student assignments (current rows of raw sits/assignment).
-- checks: unique(assignment_key), not_null(assignment_key, student_code)
-- indexes: (student_code)
SELECT
    r.key                                      AS assignment_key,
    ref.to_text(r.payload ->> 'student_code')     AS student_code,
    ref.to_text(r.payload ->> 'route_code')       AS route_code,
    ref.to_text(r.payload ->> 'prog_code')        AS prog_code,
    ref.to_text(r.payload ->> 'dpt_bdo_id')       AS dpt_bdo_id,
    ref.to_text(r.payload ->> 'dpt_fac_code')     AS faculty_code,
    ref.to_text(r.payload ->> 'post_undergrad')   AS post_undergrad,
    ref.to_text(r.payload ->> 'course_year')      AS course_year,
    CASE WHEN ref.to_text(r.payload ->> 'course_year') ~ '^[0-9]{1,3}'
         THEN substring(ref.to_text(r.payload ->> 'course_year') FROM '^[0-9]{1,3}')::int END AS year_of_study
FROM raw.record r
WHERE r.source = 'sits' AND r.instance = 'sits' AND r.entity = 'assignment'
  AND r.deleted_run IS NULL
