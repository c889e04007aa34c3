-- UCL_BDO_V_MOODLE_ROUTE: one row per route, programme and department; the
-- same route code recurs under several programmes.
SELECT ROUTE_CODE, ROUTE_NAME, PROG_CODE, DPT_BDO_ID, IOE_SESSIONS
FROM {{schema}}UCL_BDO_V_MOODLE_ROUTE
ORDER BY ROUTE_CODE, PROG_CODE, DPT_BDO_ID
