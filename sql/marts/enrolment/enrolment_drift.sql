-- Target against Moodle, one row per difference. From the target
-- (mart.fct_enrolment_target):
--   unknown_course    no course on the site has the mapped idnumber;
--   ambiguous_course  several courses have it;
--   unknown_user      the person has no account the feeds can name (a
--                     student without an account carrying the student
--                     code; staff whose UPI no account carries, or whose one
--                     account has no idnumber);
--   ambiguous_user    several accounts carry the student code (or the UPI,
--                     or the staff account's idnumber): left to the merge list;
--   missing           course and account resolved, but the account holds
--                     no enrolment with the role in the course;
--   suspended         it has, and Moodle reports the enrolment not active
--                     (suspended-but-should-be-active: IMS cannot
--                     re-activate it, someone must). Moodle's web services
--                     also report an enrolment outside its dates as not
--                     active and cannot tell the two apart, so an
--                     enrolment whose published IMS timeframe
--                     (ctl.published_membership) has not begun or has ended
--                     today is not counted: that is the feed working, not
--                     drift.
-- From Moodle (mart.fct_enrolment_actual):
--   extra             an enrolment with role R in a course that has an
--                     active mapping listing R (a role that brings a
--                     population in: int.mapping_role), whose user's idnumber is
--                     not a person of that course and role in the target
--                     (users without an idnumber included), suspended or not;
--                     person_kind says whether the idnumber is a SITS
--                     student code (student), another one (other) or none.
-- Roles compare by name: a MIM role is the Moodle role shortname.
-- explanation says why a missing or suspended enrolment is so when Moodle
-- shows the reason: the course's IMS Enterprise or flat-file enrolment
-- instance is disabled (stg.moodle_enrol_method; known when the site is
-- read from its database, as the web services do not list disabled or IMS
-- instances), so the feed's enrolments there give no access.
-- description: differences between the target and Moodle's enrolments.
-- depends: mart.fct_enrolment_target, mart.fct_enrolment_actual, int.mapping_role, int.student, stg.moodle_enrol_method
-- checks: unique(instance, kind, course_idnumber, course_id, role, person_kind, person_code, user_id)
-- checks: not_null(instance, kind, course_idnumber, role)
-- checks: accepted_values(kind, 'unknown_course', 'ambiguous_course', 'unknown_user', 'ambiguous_user', 'missing', 'suspended', 'extra')
-- indexes: (instance, kind)
WITH from_target AS (
    SELECT
        t.instance,
        CASE WHEN t.course_status = 'none' THEN 'unknown_course'
             WHEN t.course_status = 'several' THEN 'ambiguous_course'
             WHEN t.user_status IN ('none', 'no_idnumber') THEN 'unknown_user'
             WHEN t.user_status = 'several' THEN 'ambiguous_user'
             WHEN a.user_id IS NULL THEN 'missing'
             WHEN a.suspended AND NOT EXISTS (
                 SELECT 1 FROM ctl.published_membership p
                 WHERE p.instance = t.instance AND p.course_idnumber = t.course_idnumber
                   AND p.user_idnumber = t.user_idnumber AND p.roletype = t.roletype AND p.status = 1
                   AND (p.timeframe_begin > current_date OR p.timeframe_end < current_date))
                 THEN 'suspended'
        END AS kind,
        t.course_idnumber, t.course_id, t.role, t.person_kind, t.person_code, t.user_id, t.user_idnumber, t.username,
        a.suspended, t.mapping_id,
        (SELECT 'the course''s ' || min(em.method) || ' enrolment is disabled'
         FROM stg.moodle_enrol_method em
         WHERE em.instance = t.instance AND em.course_id = t.course_id AND em.method IN ('imsenterprise', 'flatfile')
           AND NOT em.enabled) AS explanation
    FROM mart.fct_enrolment_target t
    LEFT JOIN mart.fct_enrolment_actual a
           ON a.instance = t.instance AND a.course_id = t.course_id AND a.user_id = t.user_id AND a.role_shortname = t.role
),
mapped_role AS (
    SELECT instance, course_idnumber, role, min(mapping_id) AS mapping_id
    FROM int.mapping_role
    GROUP BY instance, course_idnumber, role
),
extra AS (
    SELECT
        a.instance, 'extra' AS kind, a.course_idnumber, a.course_id, a.role_shortname AS role,
        CASE WHEN s.student_code IS NOT NULL THEN 'student' WHEN a.user_idnumber IS NOT NULL THEN 'other' END AS person_kind,
        a.user_idnumber AS person_code,
        a.user_id, a.user_idnumber, a.username, a.suspended, mr.mapping_id, NULL::text AS explanation
    FROM mart.fct_enrolment_actual a
    JOIN mapped_role mr ON mr.instance = a.instance AND mr.course_idnumber = a.course_idnumber AND mr.role = a.role_shortname
    LEFT JOIN int.student s ON s.student_code = a.user_idnumber
    LEFT JOIN mart.fct_enrolment_target t
           ON t.instance = a.instance AND t.course_idnumber = a.course_idnumber AND t.role = a.role_shortname
          AND t.user_idnumber = a.user_idnumber
    WHERE t.instance IS NULL
)
SELECT instance, kind, course_idnumber, course_id, role, person_kind, person_code, user_id, user_idnumber, username,
    suspended, mapping_id, CASE WHEN kind IN ('missing', 'suspended') THEN explanation END AS explanation
FROM from_target WHERE kind IS NOT NULL
UNION ALL
SELECT * FROM extra
