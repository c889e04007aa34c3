-- SITS registrations that point at a student or a module occurrence the
-- other views do not have (the occurrence may be of a year before
-- sources.sits.min_year): they can feed nothing.
-- description: SITS registrations whose student or occurrence is unknown.
-- depends: stg.sits_student_enrl, stg.sits_student, stg.sits_module_struc
-- checks: unique(student_code, mod_occ_bdo_id, mod_dpt_bdo_id), not_null(student_code, problem)
SELECT r.student_code, r.mod_occ_bdo_id, r.mod_dpt_bdo_id, r.reg_status,
    CASE WHEN s.student_code IS NULL THEN 'unknown student' ELSE 'unknown occurrence' END AS problem
FROM stg.sits_student_enrl r
LEFT JOIN stg.sits_student s ON s.student_code = r.student_code
LEFT JOIN stg.sits_module_struc o ON o.mod_occ_bdo_id = r.mod_occ_bdo_id
WHERE s.student_code IS NULL OR o.mod_occ_bdo_id IS NULL
