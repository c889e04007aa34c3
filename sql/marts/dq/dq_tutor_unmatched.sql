-- Active students with a personal tutor who cannot be paired with the tutor
-- on a site (mart.exp_personal_tutor): no account carries the tutor's UPI,
-- several do, the one that does has no idnumber, or its idnumber is shared;
-- or the student's own code is carried by several accounts of the site
-- (enrol_dbuserrel would take whichever it finds first, so the pair is left
-- out until the accounts are merged and the code moved:
-- mart.exp_merge_candidates, mart.exp_idnumber_carry). student_user_ids are
-- the accounts carrying the student code.
-- description: personal tutors who cannot be paired with their students on a site.
-- depends: int.student, int.moodle_account, int.moodle_account_upi
-- checks: unique(instance, student_code), not_null(instance, student_code, tutor_upi, problem)
SELECT sa.instance, s.student_code, s.personal_tutor_upi AS tutor_upi,
    CASE WHEN sa.accounts > 1 THEN 'the student''s code is carried by ' || sa.accounts || ' accounts (see the merge list)'
         WHEN tu.upi IS NULL THEN 'no account has the UPI'
         WHEN tu.accounts > 1 THEN 'several accounts have the UPI'
         WHEN tu.user_idnumber IS NULL THEN 'the account has no idnumber'
         ELSE 'the account''s idnumber is held by several accounts' END AS problem,
    tu.user_ids AS tutor_user_ids,
    sa.user_ids AS student_user_ids
FROM int.student s
JOIN int.moodle_account sa ON sa.idnumber = s.student_code
LEFT JOIN int.moodle_account_upi tu ON tu.instance = sa.instance AND tu.upi = s.personal_tutor_upi
LEFT JOIN int.moodle_account ta ON ta.instance = tu.instance AND ta.idnumber = tu.user_idnumber
WHERE s.active AND s.personal_tutor_upi IS NOT NULL
  AND (sa.accounts > 1 OR tu.upi IS NULL OR tu.accounts > 1 OR tu.user_idnumber IS NULL OR ta.accounts > 1)
