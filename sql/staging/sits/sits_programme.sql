-- UCL_BDO_V_MOODLE_PROGRAMME: one row per programme x owning department.
-- description: SITS programmes (current rows of raw sits/programme).
-- checks: unique(prog_code, dpt_bdo_id), not_null(prog_code)
SELECT
    ref.to_text(r.payload ->> 'prog_code')     AS prog_code,
    ref.to_text(r.payload ->> 'prog_name')     AS prog_name,
    ref.to_text(r.payload ->> 'dpt_bdo_id')    AS dpt_bdo_id,
    ref.to_text(r.payload ->> 'ioe_sessions')  AS ioe_sessions
FROM raw.record r
WHERE r.source = 'sits' AND r.instance = 'sits' AND r.entity = 'programme'
  AND r.deleted_run IS NULL
