-- The students each active mapping admits, one row per mapping, student and
-- occurrence (occurrence NULL for programme, route, department and faculty
-- mappings). Only mappings with a role that enrols registered_students
-- (ref.mim_role_source) admit anyone, and only active students
-- (int.student).
--
-- Module mappings (module_occurrence, section): a registration on a mapped
-- occurrence whose status level (ref.sits_registration_status) is above 0
-- and at least the mapping's min_reg_status level (ref.sits_registration_status).
-- start_date and end_date are the occurrence's, for the enrolment's
-- timeframe.
--
-- Programme, route, department, faculty: the students assigned to it
-- (stg.sits_assignment; department by DPT_BDO_ID, faculty by its code),
-- filtered by course_year when set: 'P' every postgraduate, a number the
-- year of study (for a department or faculty, of undergraduates: the
-- incumbent's rule), anything else ('1A') the course year exactly. Their
-- academic_year, when set, must be the setting academic_year (when that is
-- set): a student assignment has no year of its own.
-- description: students admitted by each active mapping.
-- depends: int.mapping, int.mapping_role, int.mapping_occurrence, int.student, int.setting, stg.sits_student_enrl, stg.sits_assignment
-- checks: unique(mapping_id, student_code, mod_occ_bdo_id), not_null(mapping_id, instance, course_idnumber, student_code)
-- indexes: (instance, course_idnumber, student_code)
WITH enrolling AS (
    SELECT DISTINCT mapping_id FROM int.mapping_role WHERE source = 'registered_students'
),
module AS (
    SELECT DISTINCT mo.mapping_id, mo.instance, mo.course_idnumber, r.student_code, mo.mod_occ_bdo_id, mo.start_date, mo.end_date
    FROM int.mapping_occurrence mo
    JOIN enrolling e ON e.mapping_id = mo.mapping_id
    JOIN stg.sits_student_enrl r ON r.mod_occ_bdo_id = mo.mod_occ_bdo_id
    JOIN ref.sits_registration_status rl ON rl.code = r.reg_status
    JOIN int.student st ON st.student_code = r.student_code AND st.active
    WHERE rl.level > 0 AND rl.level >= mo.min_level
),
assigned AS (
    SELECT m.mapping_id, a.student_code, a.post_undergrad, a.course_year, a.year_of_study
    FROM int.mapping m JOIN stg.sits_assignment a ON a.prog_code = m.sis_key WHERE m.sis_kind = 'programme'
    UNION ALL
    SELECT m.mapping_id, a.student_code, a.post_undergrad, a.course_year, a.year_of_study
    FROM int.mapping m JOIN stg.sits_assignment a ON a.route_code = m.sis_key WHERE m.sis_kind = 'route'
    UNION ALL
    SELECT m.mapping_id, a.student_code, a.post_undergrad, a.course_year, a.year_of_study
    FROM int.mapping m JOIN stg.sits_assignment a ON a.dpt_bdo_id = m.sis_key WHERE m.sis_kind = 'department'
    UNION ALL
    SELECT m.mapping_id, a.student_code, a.post_undergrad, a.course_year, a.year_of_study
    FROM int.mapping m JOIN stg.sits_assignment a ON a.faculty_code = m.sis_key WHERE m.sis_kind = 'faculty'
),
sis AS (
    SELECT DISTINCT m.mapping_id, m.instance, m.course_idnumber, a.student_code,
        NULL::text AS mod_occ_bdo_id, NULL::date AS start_date, NULL::date AS end_date
    FROM assigned a
    JOIN int.mapping m ON m.mapping_id = a.mapping_id
    JOIN enrolling e ON e.mapping_id = a.mapping_id
    JOIN int.student st ON st.student_code = a.student_code AND st.active
    CROSS JOIN int.setting s
    WHERE (m.academic_year = '' OR s.academic_year = 0 OR m.ayr_start = s.academic_year)
      AND (m.course_year = ''
           OR (m.course_year = 'P' AND a.post_undergrad = 'P')
           OR (m.course_year_num IS NOT NULL AND a.year_of_study = m.course_year_num
               AND (m.sis_kind IN ('programme', 'route') OR a.post_undergrad = 'U'))
           OR (m.course_year <> 'P' AND m.course_year_num IS NULL AND a.course_year = m.course_year))
)
SELECT * FROM module
UNION ALL
SELECT * FROM sis
