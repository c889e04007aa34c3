-- CMIS group members whose student code, in SITS form (a 9-digit code that
-- starts with 0 loses it: stg.cmis_group_member.sits_student_code), is no
-- SITS student.
-- description: CMIS group members who are not SITS students.
-- depends: stg.cmis_group_member, stg.sits_student
-- checks: unique(group_bdo_id, cmis_student_code), not_null(group_bdo_id, cmis_student_code)
SELECT m.group_bdo_id, m.cmis_student_code, m.sits_student_code, m.mod_occ_bdo_id, m.setid
FROM stg.cmis_group_member m
WHERE NOT EXISTS (SELECT 1 FROM stg.sits_student s WHERE s.student_code = m.sits_student_code)
