-- Accounts of a site sharing one idnumber: IMS Enterprise and
-- enrol_dbuserrel take whichever they find first, so MIM feeds none of them
-- (the target says ambiguous_user) until they are merged
-- (mart.exp_merge_candidates). person_kind: student when the idnumber is a
-- SITS student code, other otherwise.
-- description: idnumbers carried by several accounts of a site.
-- depends: int.moodle_account, int.student
-- checks: unique(instance, idnumber), not_null(instance, idnumber, accounts, person_kind)
SELECT a.instance, a.idnumber, a.accounts, a.user_ids,
    CASE WHEN s.student_code IS NOT NULL THEN 'student' ELSE 'other' END AS person_kind,
    s.active AS student_active
FROM int.moodle_account a
LEFT JOIN int.student s ON s.student_code = a.idnumber
WHERE a.accounts > 1
