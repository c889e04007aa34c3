-- PowerCampus registrations (TRANSCRIPTDETAIL) as
-- UCL_BDO_V_MOODLE_STUDENT_ENRL: ADD_DROP_WAIT is written as the SITS
-- registration status it means (A added: CON, W waiting: NEW, D dropped:
-- REJ; anything else as read), the occurrence is the section's key.
SELECT p.PEOPLE_ID AS STUDENT_CODE,
       CONCAT(t.EVENT_ID, '|', t.EVENT_SUB_TYPE, '|', t.SECTION, '|', t.ACADEMIC_YEAR, '|',
              t.ACADEMIC_TERM, '|', t.ACADEMIC_SESSION) AS MOD_OCC_BDO_ID,
       CAST(NULL AS VARCHAR(50)) AS MOD_DPT_BDO_ID,
       CASE t.ADD_DROP_WAIT WHEN 'A' THEN 'CON' WHEN 'W' THEN 'NEW' WHEN 'D' THEN 'REJ' ELSE t.ADD_DROP_WAIT END AS REG_STATUS,
       CAST(NULL AS VARCHAR(3)) AS SMO_SMS, CAST(NULL AS VARCHAR(12)) AS SPR_CODE
FROM {{schema}}TRANSCRIPTDETAIL t
JOIN {{schema}}PEOPLE p ON p.PEOPLE_CODE_ID = t.PEOPLE_CODE_ID
WHERE t.ACADEMIC_YEAR >= :min_year AND (:term = '' OR t.ACADEMIC_TERM = :term)
ORDER BY STUDENT_CODE, MOD_OCC_BDO_ID
