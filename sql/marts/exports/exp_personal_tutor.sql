-- The personal-tutor table enrol_dbuserrel reads (docs/formats.md §4): one row
-- per site, tutor and student, for every active student whose SITS
-- personal tutor (a UPI) matches exactly one account of the site by the
-- profile field upi, that account having an idnumber no other account
-- holds, and whose student code is the idnumber of exactly one account:
-- only pairs whose two idnumbers exist (once) on the site. The role is the
-- setting tutor_role (personal_tutor unless changed).
-- description: personal tutor to student pairs per site, for enrol_dbuserrel.
-- depends: int.student, int.moodle_account, int.moodle_account_upi, int.setting
-- checks: unique(instance, role_shortname, tutor_idnumber, student_idnumber)
-- checks: not_null(instance, role_shortname, tutor_idnumber, student_idnumber, student_code, tutor_upi)
SELECT
    sa.instance, st.tutor_role AS role_shortname,
    tu.user_idnumber AS tutor_idnumber, s.student_code AS student_idnumber,
    s.student_code, s.personal_tutor_upi AS tutor_upi, 'sits:personal_tutor' AS source,
    tu.user_id AS tutor_userid, sa.user_id AS student_userid
FROM int.student s
JOIN int.moodle_account sa ON sa.idnumber = s.student_code AND sa.accounts = 1
JOIN int.moodle_account_upi tu ON tu.instance = sa.instance AND tu.upi = s.personal_tutor_upi
                              AND tu.accounts = 1 AND tu.user_idnumber IS NOT NULL
JOIN int.moodle_account ta ON ta.instance = tu.instance AND ta.idnumber = tu.user_idnumber AND ta.accounts = 1
CROSS JOIN int.setting st
WHERE s.active AND s.personal_tutor_upi IS NOT NULL
