-- The OneRoster 1.2 CSV feed (docs/contracts.md §2): per site, every row
-- of orgs, academicSessions, courses, classes, users, roles and
-- enrollments the site's complete enrolment target (mart.exp_ims_membership)
-- needs, as the file's columns after sourcedId, status and
-- dateLastModified, in the spec's order (export/oneroster names them).
-- A class is a mapped Moodle course (sourcedId = its idnumber), its course
-- the SITS module instance of its first mapped occurrence ("course-" and
-- the idnumber when no occurrence maps it), its terms the academic years'
-- periods (PSL codes) of its occurrences ("term-<year>-<psl>", inside
-- "ay-<year>", 1 August to 31 July; OneRoster's schoolYear is the year the
-- academic year ends). Users are the target's people with their Moodle
-- account's names; one role each at the institution (student if any of
-- their enrolments is, else teacher). Enrollment roles: roletypes 01 and 04
-- student, 05 and 07 administrator, the rest teacher. Dates are first and
-- last day, inclusive. The institution is the org "institution" (type
-- school, named by the site's sitename), departments "dept-<dpt_bdo_id>".
-- description: OneRoster 1.2 CSV rows per site and file.
-- depends: mart.exp_ims_membership, int.mapping_occurrence, stg.sits_module_inst, stg.sits_department, stg.moodle_user, stg.moodle_course, stg.moodle_site, int.setting
-- checks: unique(instance, file, sourced_id), not_null(instance, file, sourced_id, fields)
-- checks: accepted_values(file, 'orgs', 'academicSessions', 'courses', 'classes', 'users', 'roles', 'enrollments')
-- indexes: (instance, file)
WITH member AS (
    SELECT m.instance, m.course_idnumber, m.user_idnumber, m.course_id, m.user_id, m.timeframe_begin, m.timeframe_end,
        CASE WHEN m.roletype IN ('01', '04') THEN 'student' WHEN m.roletype IN ('05', '07') THEN 'administrator' ELSE 'teacher' END AS or_role
    FROM mart.exp_ims_membership m
    WHERE m.status = 1
),
enrol AS (
    SELECT instance, course_idnumber, user_idnumber, or_role, min(course_id) AS course_id, min(user_id) AS user_id,
        CASE WHEN bool_or(timeframe_begin IS NULL) THEN NULL ELSE min(timeframe_begin) END AS tb,
        CASE WHEN bool_or(timeframe_end IS NULL) THEN NULL ELSE max(timeframe_end) END AS te
    FROM member GROUP BY 1, 2, 3, 4
),
class AS (
    SELECT DISTINCT instance, course_idnumber, course_id FROM enrol
),
occ AS (
    SELECT DISTINCT mo.instance, mo.course_idnumber, mo.mod_inst_bdo_id, mo.mod_code, mo.psl_code, mo.ayr_code, mo.ayr_start,
        mo.start_date, mo.end_date
    FROM int.mapping_occurrence mo
    JOIN class c ON c.instance = mo.instance AND c.course_idnumber = mo.course_idnumber
    WHERE mo.ayr_start IS NOT NULL
),
fallback_year AS (
    SELECT CASE WHEN s.academic_year > 0 THEN s.academic_year
                ELSE extract(year FROM current_date - interval '7 months')::int END AS ayr_start
    FROM int.setting s
),
class_term AS (
    SELECT o.instance, o.course_idnumber, o.ayr_start,
        'term-' || o.ayr_start || '-' || coalesce(o.psl_code, 'YEAR') AS term_id, coalesce(o.psl_code, 'YEAR') AS psl_code,
        o.start_date, o.end_date
    FROM occ o
    UNION ALL
    SELECT c.instance, c.course_idnumber, y.ayr_start, 'ay-' || y.ayr_start, NULL, NULL::date, NULL::date
    FROM class c CROSS JOIN fallback_year y
    WHERE NOT EXISTS (SELECT 1 FROM occ o WHERE o.instance = c.instance AND o.course_idnumber = c.course_idnumber)
),
school_year AS (
    SELECT DISTINCT instance, ayr_start FROM class_term
),
term AS (
    SELECT instance, ayr_start, term_id, min(psl_code) AS psl_code, min(start_date) AS start_date, max(end_date) AS end_date
    FROM class_term WHERE psl_code IS NOT NULL
    GROUP BY 1, 2, 3
),
course AS (
    SELECT o.instance, o.mod_inst_bdo_id AS sourced_id, min(o.ayr_start) AS ayr_start,
        coalesce(min(mi.mod_name), min(o.mod_code)) AS title, min(o.mod_code) AS code,
        coalesce('dept-' || min(d.dpt_bdo_id), 'institution') AS org
    FROM occ o
    LEFT JOIN stg.sits_module_inst mi ON mi.mod_inst_bdo_id = o.mod_inst_bdo_id
    LEFT JOIN stg.sits_department d ON d.dpt_bdo_id = mi.mod_dpt_bdo_id
    WHERE o.mod_inst_bdo_id IS NOT NULL
    GROUP BY 1, 2
    UNION ALL
    SELECT c.instance, 'course-' || c.course_idnumber, y.ayr_start, coalesce(mc.fullname, c.course_idnumber), c.course_idnumber, 'institution'
    FROM class c CROSS JOIN fallback_year y
    LEFT JOIN stg.moodle_course mc ON mc.instance = c.instance AND mc.course_id = c.course_id
    WHERE NOT EXISTS (SELECT 1 FROM occ o WHERE o.instance = c.instance AND o.course_idnumber = c.course_idnumber
                        AND o.mod_inst_bdo_id IS NOT NULL)
),
person AS (
    SELECT e.instance, e.user_idnumber, min(e.user_id) AS user_id, bool_or(e.or_role = 'student') AS student
    FROM enrol e GROUP BY 1, 2
),
-- Per class, its course (first mapped module instance) and its terms,
-- aggregated once: a subquery per class over the whole of occ and
-- class_term (CTEs have no index) took half a minute at UCL's size.
class_course AS (
    SELECT instance, course_idnumber, min(mod_inst_bdo_id) AS mod_inst_bdo_id FROM occ GROUP BY 1, 2
),
class_terms AS (
    SELECT instance, course_idnumber, string_agg(DISTINCT term_id, ',' ORDER BY term_id) AS term_ids FROM class_term GROUP BY 1, 2
)
SELECT instance, 'orgs' AS file, 'institution' AS sourced_id,
    ARRAY[coalesce(min(sitename), instance), 'school', instance, ''] AS fields
FROM (SELECT DISTINCT c.instance, s.sitename FROM class c LEFT JOIN stg.moodle_site s ON s.instance = c.instance) i
GROUP BY instance
UNION ALL
SELECT DISTINCT c.instance, 'orgs', c.org, ARRAY[coalesce(d.dpt_name, d.dpt_code, c.org), 'department', coalesce(d.dpt_code, ''), 'institution']
FROM course c JOIN stg.sits_department d ON 'dept-' || d.dpt_bdo_id = c.org
UNION ALL
SELECT instance, 'academicSessions', 'ay-' || ayr_start,
    ARRAY[ayr_start || '/' || right((ayr_start + 1)::text, 2), 'schoolYear', ayr_start || '-08-01', (ayr_start + 1) || '-07-31', '',
          (ayr_start + 1)::text]
FROM school_year
UNION ALL
SELECT instance, 'academicSessions', term_id,
    ARRAY[psl_code || ' ' || ayr_start || '/' || right((ayr_start + 1)::text, 2), 'term',
          coalesce(start_date, make_date(ayr_start, 8, 1))::text, coalesce(end_date, make_date(ayr_start + 1, 7, 31))::text,
          'ay-' || ayr_start, (ayr_start + 1)::text]
FROM term
UNION ALL
SELECT instance, 'courses', sourced_id, ARRAY['ay-' || ayr_start, title, code, '', org, '', '']
FROM course
UNION ALL
SELECT c.instance, 'classes', c.course_idnumber,
    ARRAY[coalesce(mc.fullname, c.course_idnumber), '',
          coalesce(cc.mod_inst_bdo_id, 'course-' || c.course_idnumber),
          c.course_idnumber, 'scheduled', '', 'institution',
          ct.term_ids, '', '', '']
FROM class c
LEFT JOIN stg.moodle_course mc ON mc.instance = c.instance AND mc.course_id = c.course_id
LEFT JOIN class_course cc ON cc.instance = c.instance AND cc.course_idnumber = c.course_idnumber
LEFT JOIN class_terms ct ON ct.instance = c.instance AND ct.course_idnumber = c.course_idnumber
UNION ALL
SELECT p.instance, 'users', p.user_idnumber,
    ARRAY['true', coalesce(u.username, p.user_idnumber), '', coalesce(u.firstname, ''), coalesce(u.lastname, ''), '',
          p.user_idnumber, coalesce(u.email, ''), '', '', '', '', '', '', '', '', '', '', 'institution', '']
FROM person p
LEFT JOIN stg.moodle_user u ON u.instance = p.instance AND u.user_id = p.user_id
UNION ALL
SELECT instance, 'roles', 'role-' || user_idnumber,
    ARRAY[user_idnumber, 'primary', CASE WHEN student THEN 'student' ELSE 'teacher' END, '', '', 'institution', '']
FROM person
UNION ALL
SELECT instance, 'enrollments', course_idnumber || '|' || user_idnumber || '|' || or_role,
    ARRAY[course_idnumber, 'institution', user_idnumber, or_role, 'false', coalesce(tb::text, ''), coalesce(te::text, '')]
FROM enrol
