-- UCL_BDO_V_MOODLE_DEPARTMENT: one row per department. DPT_BDO_ID may be
-- empty (NULL in Oracle); the key then falls back to the department code.
SELECT DPT_BDO_ID, DPT_CODE, DPT_NAME, DPT_FAC_CODE
FROM {{schema}}UCL_BDO_V_MOODLE_DEPARTMENT
ORDER BY DPT_CODE, DPT_BDO_ID
