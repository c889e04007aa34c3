-- UCL_BDO_V_MOODLE_MODULE_STRUC: module occurrences, the rows Moodle courses
-- are mapped to. The start and end dates are the period slot's (INS_YPS).
SELECT MOD_OCC_BDO_ID, MOD_INST_BDO_ID, MOD_CODE, MOD_OCC_PSL_CODE, MOD_OCC_MAV,
       MOD_OCC_YEAR_CODE, MOD_OCC_NAME, MOD_OCC_START_DATE, MOD_OCC_END_DATE
FROM {{schema}}UCL_BDO_V_MOODLE_MODULE_STRUC
WHERE :min_year = '0000' OR SUBSTR(MOD_OCC_YEAR_CODE, 1, 4) >= :min_year
ORDER BY MOD_OCC_BDO_ID
