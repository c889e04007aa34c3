-- What a Moodle course can be mapped to: the list course staff search in the
-- LTI tool (internal/lti), one row per SIS entity. Module occurrences are
-- those of the current academic year (the setting academic_year; when it is
-- 0, from min_mod_occ_year on; when both are 0, every year); programmes,
-- routes, departments (with a BDO id) and faculties have no year. sis_key is
-- what a mapping of that kind stores (docs/contracts.md §2): the
-- occurrence's MOD_OCC_BDO_ID, the programme, route or faculty code, the
-- department's DPT_BDO_ID; code is what people call it (the occurrence's
-- MOD-MAV-PSL-AYR key). students counts who it would bring in today:
-- registrations with an enrolling status, or students assigned to it.
-- search is the lower-case text a search matches: codes, names, department,
-- period slot and year.
-- description: SIS entities a Moodle course can be mapped to, with the text the staff's search matches.
-- depends: stg.sits_module_struc, stg.sits_module_inst, stg.sits_student_enrl, stg.sits_programme, stg.sits_route, stg.sits_department, stg.sits_faculties, stg.sits_assignment, int.setting
-- checks: unique(sis_kind, sis_key), not_null(sis_kind, sis_key, code, title, students, search)
-- checks: accepted_values(sis_kind, 'module_occurrence', 'programme', 'route', 'department', 'faculty')
-- indexes: (sis_kind, sis_key)
WITH dept AS (
    SELECT dpt_bdo_id, min(dpt_name) AS dpt_name FROM stg.sits_department WHERE dpt_bdo_id IS NOT NULL GROUP BY 1
),
registered AS (
    SELECT r.mod_occ_bdo_id, count(DISTINCT r.student_code) AS students
    FROM stg.sits_student_enrl r JOIN ref.sits_registration_status rl ON rl.code = r.reg_status
    WHERE rl.level > 0
    GROUP BY 1
),
occurrence AS (
    SELECT 'module_occurrence'::text AS sis_kind, o.mod_occ_bdo_id AS sis_key,
        coalesce(o.occ_key, o.mod_occ_bdo_id) AS code,
        coalesce(i.mod_name, o.occ_name, o.mod_code) AS title,
        coalesce(o.ayr_start::text, '') AS academic_year,
        d.dpt_name AS department, o.psl_code AS period,
        coalesce(r.students, 0) AS students
    FROM stg.sits_module_struc o
    CROSS JOIN int.setting s
    LEFT JOIN stg.sits_module_inst i ON i.mod_inst_bdo_id = o.mod_inst_bdo_id
    LEFT JOIN dept d ON d.dpt_bdo_id = i.mod_dpt_bdo_id
    LEFT JOIN registered r ON r.mod_occ_bdo_id = o.mod_occ_bdo_id
    WHERE CASE WHEN s.academic_year > 0 THEN o.ayr_start = s.academic_year
               WHEN s.min_mod_occ_year > 0 THEN o.ayr_start >= s.min_mod_occ_year
               ELSE true END
),
assigned AS (
    SELECT 'programme'::text AS sis_kind, prog_code AS sis_key, count(DISTINCT student_code) AS students
    FROM stg.sits_assignment WHERE prog_code IS NOT NULL GROUP BY 2
    UNION ALL
    SELECT 'route', route_code, count(DISTINCT student_code) FROM stg.sits_assignment WHERE route_code IS NOT NULL GROUP BY 2
    UNION ALL
    SELECT 'department', dpt_bdo_id, count(DISTINCT student_code) FROM stg.sits_assignment WHERE dpt_bdo_id IS NOT NULL GROUP BY 2
    UNION ALL
    SELECT 'faculty', faculty_code, count(DISTINCT student_code) FROM stg.sits_assignment WHERE faculty_code IS NOT NULL GROUP BY 2
),
other AS (
    SELECT 'programme'::text AS sis_kind, p.prog_code AS sis_key, p.prog_code AS code, coalesce(min(p.prog_name), p.prog_code) AS title,
        min(d.dpt_name) AS department
    FROM stg.sits_programme p LEFT JOIN dept d ON d.dpt_bdo_id = p.dpt_bdo_id
    GROUP BY p.prog_code
    UNION ALL
    SELECT 'route', r.route_code, r.route_code, coalesce(min(r.route_name), r.route_code), min(d.dpt_name)
    FROM stg.sits_route r LEFT JOIN dept d ON d.dpt_bdo_id = r.dpt_bdo_id
    GROUP BY r.route_code
    UNION ALL
    SELECT 'department', d.dpt_bdo_id, coalesce(min(d.dpt_code), d.dpt_bdo_id), coalesce(min(d.dpt_name), d.dpt_bdo_id), NULL
    FROM stg.sits_department d WHERE d.dpt_bdo_id IS NOT NULL
    GROUP BY d.dpt_bdo_id
    UNION ALL
    SELECT 'faculty', f.faculty_code, f.faculty_code, coalesce(f.faculty_name, f.faculty_code), NULL
    FROM stg.sits_faculties f
),
candidate AS (
    SELECT sis_kind, sis_key, code, title, academic_year, department, period, students FROM occurrence
    UNION ALL
    SELECT o.sis_kind, o.sis_key, o.code, o.title, '' AS academic_year, o.department, NULL AS period, coalesce(a.students, 0)
    FROM other o LEFT JOIN assigned a ON a.sis_kind = o.sis_kind AND a.sis_key = o.sis_key
)
SELECT sis_kind, sis_key, code, title, academic_year, department, period, students,
    lower(concat_ws(' ', code, replace(code, '-', ' '), title, department, period, academic_year)) AS search
FROM candidate
