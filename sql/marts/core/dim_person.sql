-- Every SIS person with their Moodle accounts on every site: one row per
-- site and person. Students are matched by account idnumber = student code;
-- staff (the UPIs SITS and CMIS name: module leaders, personal tutors, CMIS
-- group tutors; staff_roles says which) by the profile field upi.
-- account_status: none, one or several accounts; user_id and user_idnumber
-- when exactly one (for staff, the idnumber that account carries, NULL if
-- none), user_ids lists them all.
-- description: SIS people (students and staff) with their accounts per Moodle site.
-- depends: int.student, int.site, int.moodle_account, int.moodle_account_upi, stg.sits_module_inst, stg.cmis_group_tutor
-- checks: unique(instance, person_kind, person_code), not_null(instance, person_kind, person_code, account_status, accounts)
-- checks: accepted_values(person_kind, 'student', 'staff'), accepted_values(account_status, 'none', 'one', 'several')
-- indexes: (instance, person_code)
WITH staff AS (
    SELECT upi, array_agg(DISTINCT role ORDER BY role) AS staff_roles
    FROM (
        SELECT upper(mod_leader_upi) AS upi, 'module_leader' AS role FROM stg.sits_module_inst WHERE mod_leader_upi IS NOT NULL
        UNION ALL
        SELECT personal_tutor_upi, 'personal_tutor' FROM int.student WHERE personal_tutor_upi IS NOT NULL
        UNION ALL
        SELECT upper(staff_upi), 'group_tutor' FROM stg.cmis_group_tutor WHERE staff_upi IS NOT NULL
    ) x
    GROUP BY upi
)
SELECT
    site.instance, 'student' AS person_kind, s.student_code AS person_code,
    s.student_code, s.upi, s.username, s.firstname, s.surname, s.email, s.active, NULL::text[] AS staff_roles,
    CASE coalesce(a.accounts, 0) WHEN 0 THEN 'none' WHEN 1 THEN 'one' ELSE 'several' END AS account_status,
    coalesce(a.accounts, 0) AS accounts,
    a.user_id,
    CASE WHEN a.accounts = 1 THEN s.student_code END AS user_idnumber,
    a.user_ids
FROM int.student s
CROSS JOIN int.site site
LEFT JOIN int.moodle_account a ON a.instance = site.instance AND a.idnumber = s.student_code
UNION ALL
SELECT
    site.instance, 'staff', st.upi,
    NULL, st.upi, NULL, NULL, NULL, NULL, NULL, st.staff_roles,
    CASE coalesce(u.accounts, 0) WHEN 0 THEN 'none' WHEN 1 THEN 'one' ELSE 'several' END,
    coalesce(u.accounts, 0),
    u.user_id, u.user_idnumber, u.user_ids
FROM staff st
CROSS JOIN int.site site
LEFT JOIN int.moodle_account_upi u ON u.instance = site.instance AND u.upi = st.upi
