-- UCL_BDO_V_MOODLE_MODULE_STRUC: module occurrences, the grain a Moodle
-- course is mapped to. occ_key is the occurrence's natural key written as
-- the course idnumber convention <MOD_CODE>-<MAV_OCCUR>-<PSL_CODE>-<AYR_CODE>
-- with '/' -> '_' (CLAS0001-A4U-T1_2-2025); a module_occurrence mapping's
-- sis_key is either mod_occ_bdo_id or occ_key. NULL when a part is missing.
-- start_date and end_date are the period slot's dates (MOD_OCC_START_DATE,
-- MOD_OCC_END_DATE), the enrolment timeframe; NULL when SITS has none.
-- description: SITS module occurrences (current rows of raw sits/module_struc).
-- checks: unique(mod_occ_bdo_id), not_null(mod_occ_bdo_id, mod_code)
-- indexes: (mod_occ_bdo_id), (occ_key)
SELECT
    s.mod_occ_bdo_id, s.mod_inst_bdo_id, s.mod_code, s.psl_code, s.mav_occur, s.ayr_code,
    ref.ayr_start(s.ayr_code) AS ayr_start,
    s.occ_name, s.start_date, s.end_date,
    CASE WHEN s.mod_code IS NOT NULL AND s.mav_occur IS NOT NULL AND s.psl_code IS NOT NULL AND s.ayr_code IS NOT NULL
         THEN s.mod_code || '-' || s.mav_occur || '-' || replace(s.psl_code, '/', '_') || '-' || replace(s.ayr_code, '/', '_')
    END AS occ_key
FROM (
    SELECT
        ref.to_text(r.payload ->> 'mod_occ_bdo_id')    AS mod_occ_bdo_id,
        ref.to_text(r.payload ->> 'mod_inst_bdo_id')   AS mod_inst_bdo_id,
        ref.to_text(r.payload ->> 'mod_code')          AS mod_code,
        ref.to_text(r.payload ->> 'mod_occ_psl_code')  AS psl_code,
        ref.to_text(r.payload ->> 'mod_occ_mav')       AS mav_occur,
        ref.to_text(r.payload ->> 'mod_occ_year_code') AS ayr_code,
        ref.to_text(r.payload ->> 'mod_occ_name')      AS occ_name,
        ref.to_date(r.payload ->> 'mod_occ_start_date') AS start_date,
        ref.to_date(r.payload ->> 'mod_occ_end_date')   AS end_date
    FROM raw.record r
    WHERE r.source = 'sits' AND r.instance = 'sits' AND r.entity = 'module_struc'
      AND r.deleted_run IS NULL
) s
