-- Active students with a personal tutor and exactly one account on a site
-- whose tutor cannot be paired there (mart.exp_personal_tutor): no account
-- carries the tutor's UPI, several do, the one that does has no idnumber,
-- or its idnumber is shared.
-- description: personal tutors who cannot be paired with their students on a site.
-- depends: int.student, int.moodle_account, int.moodle_account_upi
-- checks: unique(instance, student_code), not_null(instance, student_code, tutor_upi, problem)
SELECT sa.instance, s.student_code, s.personal_tutor_upi AS tutor_upi,
    CASE WHEN tu.upi IS NULL THEN 'no account has the UPI'
         WHEN tu.accounts > 1 THEN 'several accounts have the UPI'
         WHEN tu.user_idnumber IS NULL THEN 'the account has no idnumber'
         ELSE 'the account''s idnumber is held by several accounts' END AS problem,
    tu.user_ids AS tutor_user_ids
FROM int.student s
JOIN int.moodle_account sa ON sa.idnumber = s.student_code AND sa.accounts = 1
LEFT JOIN int.moodle_account_upi tu ON tu.instance = sa.instance AND tu.upi = s.personal_tutor_upi
LEFT JOIN int.moodle_account ta ON ta.instance = tu.instance AND ta.idnumber = tu.user_idnumber
WHERE s.active AND s.personal_tutor_upi IS NOT NULL
  AND (tu.upi IS NULL OR tu.accounts > 1 OR tu.user_idnumber IS NULL OR ta.accounts > 1)
