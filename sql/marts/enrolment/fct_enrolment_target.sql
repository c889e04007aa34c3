-- What the SIS says Moodle should have: one row per site, course idnumber,
-- role and person, from the active mappings only (docs/contracts.md §2).
-- Students come from int.mapping_student (registrations at or above the
-- mapping's status, active students, min_mod_occ_year), staff from
-- int.mapping_staff (module leaders, CMIS group tutors), each under the
-- mapping's roles of the matching source (ref.mim_role_source).
--
-- The course is resolved by idnumber on the site (course_status one, none:
-- an unknown course, several: a duplicated idnumber), the person by
-- account: a student by user idnumber = student code, staff by the UPI
-- profile field (user_status one, none, several; no_idnumber: staff whose
-- one account has no idnumber, which IMS cannot name). user_idnumber is the
-- idnumber the feeds name the person by: the student code for a student
-- (account or not), the idnumber of the one account carrying the UPI for
-- staff. roletype is the IMS code of the role (exports.ims_roles, via
-- ctl.config_ims_role), NULL when the role has none.
--
-- The timeframe is that of the mapped occurrences: the first start and the
-- last end day (both inclusive); NULL (no limit) on a side if any
-- occurrence has no date there, for programme-like mappings, and for staff.
-- mapping_id is the lowest of mapping_ids, the mappings giving the row.
-- description: the enrolments the SIS says should exist, per site, course, role and person.
-- depends: int.mapping_student, int.mapping_staff, int.mapping_role, int.moodle_account, int.moodle_account_upi, int.moodle_course_idnumber
-- checks: unique(instance, course_idnumber, role, person_kind, person_code)
-- checks: not_null(instance, course_idnumber, role, person_kind, person_code, course_status, user_status, mapping_id, mapping_ids)
-- checks: accepted_values(person_kind, 'student', 'staff'), accepted_values(course_status, 'one', 'none', 'several')
-- checks: accepted_values(user_status, 'one', 'none', 'several', 'no_idnumber')
-- checks: accepted_values(roletype, '01', '02', '03', '04', '05', '06', '07', '08')
-- indexes: (instance, course_idnumber), (instance, user_idnumber)
WITH student AS (
    SELECT ms.instance, ms.course_idnumber, mr.role, ms.student_code,
        min(ms.mapping_id) AS mapping_id,
        array_agg(DISTINCT ms.mapping_id ORDER BY ms.mapping_id) AS mapping_ids,
        CASE WHEN bool_or(ms.start_date IS NULL) THEN NULL ELSE min(ms.start_date) END AS timeframe_begin,
        CASE WHEN bool_or(ms.end_date IS NULL) THEN NULL ELSE max(ms.end_date) END AS timeframe_end
    FROM int.mapping_student ms
    JOIN int.mapping_role mr ON mr.mapping_id = ms.mapping_id AND mr.source = 'registered_students'
    GROUP BY ms.instance, ms.course_idnumber, mr.role, ms.student_code
),
staff AS (
    SELECT instance, course_idnumber, role, staff_upi,
        min(mapping_id) AS mapping_id,
        array_agg(DISTINCT mapping_id ORDER BY mapping_id) AS mapping_ids
    FROM int.mapping_staff
    GROUP BY instance, course_idnumber, role, staff_upi
),
person AS (
    SELECT s.instance, s.course_idnumber, s.role, 'student' AS person_kind, s.student_code AS person_code,
        s.student_code, NULL::text AS staff_upi,
        CASE coalesce(a.accounts, 0) WHEN 0 THEN 'none' WHEN 1 THEN 'one' ELSE 'several' END AS user_status,
        coalesce(a.accounts, 0) AS accounts,
        a.user_id, s.student_code AS user_idnumber, a.username,
        s.mapping_id, s.mapping_ids, s.timeframe_begin, s.timeframe_end
    FROM student s
    LEFT JOIN int.moodle_account a ON a.instance = s.instance AND a.idnumber = s.student_code
    UNION ALL
    SELECT f.instance, f.course_idnumber, f.role, 'staff', f.staff_upi,
        NULL, f.staff_upi,
        CASE WHEN coalesce(u.accounts, 0) = 0 THEN 'none'
             WHEN u.accounts > 1 THEN 'several'
             WHEN u.user_idnumber IS NULL THEN 'no_idnumber'
             WHEN ia.accounts > 1 THEN 'several'
             ELSE 'one' END,
        coalesce(u.accounts, 0),
        u.user_id, u.user_idnumber, u.username,
        f.mapping_id, f.mapping_ids, NULL::date, NULL::date
    FROM staff f
    LEFT JOIN int.moodle_account_upi u ON u.instance = f.instance AND u.upi = f.staff_upi
    LEFT JOIN int.moodle_account ia ON ia.instance = u.instance AND ia.idnumber = u.user_idnumber
)
SELECT
    p.instance, p.course_idnumber,
    CASE coalesce(c.courses, 0) WHEN 0 THEN 'none' WHEN 1 THEN 'one' ELSE 'several' END AS course_status,
    c.course_id,
    p.role, r.roletype,
    p.person_kind, p.person_code, p.student_code, p.staff_upi,
    p.user_status, p.accounts,
    CASE WHEN p.user_status = 'one' THEN p.user_id END AS user_id,
    p.user_idnumber,
    CASE WHEN p.user_status = 'one' THEN p.username END AS username,
    p.mapping_id, p.mapping_ids, p.timeframe_begin, p.timeframe_end
FROM person p
LEFT JOIN int.moodle_course_idnumber c ON c.instance = p.instance AND c.idnumber = p.course_idnumber
LEFT JOIN ctl.config_ims_role r ON r.role = p.role
