-- description: a student is in the target only if their enrolment status
-- description: enrols and their course join is open (ref.sits_enrolment_status, ref.sits_course_join_status)
-- description: and, through a module mapping, only with a registration on one
-- description: of its occurrences at or above the mapping's minimum status and
-- description: never REJ (ref.sits_registration_status). Written again from staging and ctl, not from
-- description: the intermediate models.
-- depends: mart.fct_enrolment_target, stg.sits_student, stg.sits_module_struc, stg.sits_student_enrl
-- The query is a MATERIALIZED CTE so that it is planned for all its rows:
-- the runner reads a test through LIMIT, which otherwise steers the planner
-- to nested loops that never finish at scale.
WITH failing AS MATERIALIZED (
    WITH admitted AS (
        SELECT m.mapping_id, r.student_code
        FROM ctl.course_mapping m
        JOIN stg.sits_module_struc o ON o.mod_occ_bdo_id = m.sis_key
        JOIN stg.sits_student_enrl r ON r.mod_occ_bdo_id = o.mod_occ_bdo_id
        JOIN ref.sits_registration_status rl ON rl.code = r.reg_status
        JOIN ref.sits_registration_status ml ON ml.code = m.min_reg_status
        WHERE m.sis_kind = 'module_occurrence' AND rl.level > 0 AND rl.level >= ml.level
        UNION
        SELECT m.mapping_id, r.student_code
        FROM ctl.course_mapping m
        JOIN stg.sits_module_struc o ON o.occ_key = m.sis_key
        JOIN stg.sits_student_enrl r ON r.mod_occ_bdo_id = o.mod_occ_bdo_id
        JOIN ref.sits_registration_status rl ON rl.code = r.reg_status
        JOIN ref.sits_registration_status ml ON ml.code = m.min_reg_status
        WHERE m.sis_kind = 'module_occurrence' AND rl.level > 0 AND rl.level >= ml.level
        UNION
        SELECT m.mapping_id, r.student_code
        FROM ctl.course_mapping m
        JOIN stg.sits_module_struc o ON o.mod_code = m.sis_key AND (m.section = '' OR o.mav_occur = m.section)
        JOIN stg.sits_student_enrl r ON r.mod_occ_bdo_id = o.mod_occ_bdo_id
        JOIN ref.sits_registration_status rl ON rl.code = r.reg_status
        JOIN ref.sits_registration_status ml ON ml.code = m.min_reg_status
        WHERE m.sis_kind = 'section' AND rl.level > 0 AND rl.level >= ml.level
    ),
    student_row AS (
        SELECT t.instance, t.course_idnumber, t.role, t.student_code, x.mapping_id
        FROM mart.fct_enrolment_target t
        CROSS JOIN LATERAL unnest(t.mapping_ids) AS x(mapping_id)
        WHERE t.person_kind = 'student'
    )
    SELECT s.instance, s.course_idnumber, s.role, s.student_code, s.mapping_id, 'not an active student' AS problem
    FROM student_row s
    WHERE NOT EXISTS (
        SELECT 1 FROM stg.sits_student st
        JOIN ref.sits_enrolment_status es ON es.code = st.enrolment_status AND es.enrol
        JOIN ref.sits_course_join_status js ON js.code = st.course_join_status AND js.open
        WHERE st.student_code = s.student_code)
    UNION ALL
    SELECT s.instance, s.course_idnumber, s.role, s.student_code, s.mapping_id, 'no registration the module mapping admits'
    FROM student_row s
    JOIN ctl.course_mapping m ON m.mapping_id = s.mapping_id AND m.sis_kind IN ('module_occurrence', 'section')
    WHERE NOT EXISTS (SELECT 1 FROM admitted a WHERE a.mapping_id = s.mapping_id AND a.student_code = s.student_code)
)
SELECT * FROM failing
