-- CMIS group members who are SITS students but have no registration (of
-- any status) on the group's module occurrence: CMIS lags SITS. Group sync
-- still puts them in the group when they have an account; this says why a
-- student may be in a group but not enrolled in its course.
-- description: CMIS group members without a SITS registration on the group's occurrence.
-- depends: stg.cmis_group_member, stg.sits_student, stg.sits_student_enrl
-- checks: unique(group_bdo_id, cmis_student_code), not_null(group_bdo_id, cmis_student_code, sits_student_code)
SELECT m.group_bdo_id, m.cmis_student_code, m.sits_student_code, m.mod_occ_bdo_id, m.setid
FROM stg.cmis_group_member m
WHERE EXISTS (SELECT 1 FROM stg.sits_student s WHERE s.student_code = m.sits_student_code)
  AND NOT EXISTS (SELECT 1 FROM stg.sits_student_enrl r
                  WHERE r.student_code = m.sits_student_code AND r.mod_occ_bdo_id = m.mod_occ_bdo_id)
