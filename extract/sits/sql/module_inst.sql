-- UCL_BDO_V_MOODLE_MODULE_INST: module x academic year. :min_year is the
-- first academic start year kept, as four digits ('0000' keeps every row);
-- year codes are compared on their first four characters ('2025', '2025/6').
SELECT MOD_INST_BDO_ID, MOD_BDO_ID, MOD_CODE, MOD_NAME, MOD_DPT_BDO_ID,
       MOD_YEAR_CODE, MOD_CREDITS, MOD_LEADER_UPI
FROM {{schema}}UCL_BDO_V_MOODLE_MODULE_INST
WHERE :min_year = '0000' OR SUBSTR(MOD_YEAR_CODE, 1, 4) >= :min_year
ORDER BY MOD_INST_BDO_ID
