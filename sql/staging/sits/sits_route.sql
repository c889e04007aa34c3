-- UCL_BDO_V_MOODLE_ROUTE: one row per route x programme x department (the
-- same route code recurs under several programmes).
-- description: SITS routes (current rows of raw sits/route).
-- checks: unique(route_code, prog_code, dpt_bdo_id), not_null(route_code)
SELECT
    ref.to_text(r.payload ->> 'route_code')    AS route_code,
    ref.to_text(r.payload ->> 'route_name')    AS route_name,
    ref.to_text(r.payload ->> 'prog_code')     AS prog_code,
    ref.to_text(r.payload ->> 'dpt_bdo_id')    AS dpt_bdo_id,
    ref.to_text(r.payload ->> 'ioe_sessions')  AS ioe_sessions
FROM raw.record r
WHERE r.source = 'sits' AND r.instance = 'sits' AND r.entity = 'route'
  AND r.deleted_run IS NULL
