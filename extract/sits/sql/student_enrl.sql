-- UCL_BDO_V_MOODLE_STUDENT_ENRL: student x module occurrence registrations,
-- limited to occurrences of the kept academic years.
SELECT STUDENT_CODE, MOD_OCC_BDO_ID, MOD_DPT_BDO_ID, REG_STATUS, SMO_SMS, SPR_CODE
FROM {{schema}}UCL_BDO_V_MOODLE_STUDENT_ENRL
WHERE :min_year = '0000'
   OR MOD_OCC_BDO_ID IN (SELECT MOD_OCC_BDO_ID
                         FROM {{schema}}UCL_BDO_V_MOODLE_MODULE_STRUC
                         WHERE SUBSTR(MOD_OCC_YEAR_CODE, 1, 4) >= :min_year)
ORDER BY STUDENT_CODE, MOD_OCC_BDO_ID, MOD_DPT_BDO_ID
