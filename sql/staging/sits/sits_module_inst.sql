-- UCL_BDO_V_MOODLE_MODULE_INST: a module in one academic year. ayr_start is
-- the numeric start year of mod_year_code (ref.ayr_start: '2025', '2025/6',
-- '25/26' all give 2025; NULL when the code has another shape).
-- description: SITS module instances (current rows of raw sits/module_inst).
-- checks: unique(mod_inst_bdo_id), not_null(mod_inst_bdo_id, mod_code)
-- indexes: (mod_inst_bdo_id)
SELECT
    ref.to_text(r.payload ->> 'mod_inst_bdo_id')            AS mod_inst_bdo_id,
    ref.to_text(r.payload ->> 'mod_bdo_id')                 AS mod_bdo_id,
    ref.to_text(r.payload ->> 'mod_code')                   AS mod_code,
    ref.to_text(r.payload ->> 'mod_name')                   AS mod_name,
    ref.to_text(r.payload ->> 'mod_dpt_bdo_id')             AS mod_dpt_bdo_id,
    ref.to_text(r.payload ->> 'mod_year_code')              AS mod_year_code,
    ref.ayr_start(ref.to_text(r.payload ->> 'mod_year_code')) AS ayr_start,
    ref.to_num(r.payload ->> 'mod_credits')                 AS mod_credits,
    ref.to_text(r.payload ->> 'mod_leader_upi')             AS mod_leader_upi
FROM raw.record r
WHERE r.source = 'sits' AND r.instance = 'sits' AND r.entity = 'module_inst'
  AND r.deleted_run IS NULL
