-- The SITS module occurrences each active module mapping feeds from. A
-- module_occurrence mapping names one occurrence by its MOD_OCC_BDO_ID or
-- its occ_key (MOD-MAV-PSL-AYR, '/' written '_'); a section mapping names a
-- module code and a MAV_OCCUR (or '' for every occurrence of the module).
-- Occurrences of an academic year other than the mapping's (when it has
-- one), or before the setting min_mod_occ_year (when set), are left out.
-- description: module occurrences of active module_occurrence and section mappings.
-- depends: int.mapping, int.setting, stg.sits_module_struc
-- checks: unique(mapping_id, mod_occ_bdo_id), not_null(mapping_id, instance, course_idnumber, mod_occ_bdo_id)
-- indexes: (mod_occ_bdo_id), (mapping_id)
WITH candidate AS (
    SELECT m.mapping_id, o.mod_occ_bdo_id
    FROM int.mapping m JOIN stg.sits_module_struc o ON o.mod_occ_bdo_id = m.sis_key
    WHERE m.sis_kind = 'module_occurrence'
    UNION
    SELECT m.mapping_id, o.mod_occ_bdo_id
    FROM int.mapping m JOIN stg.sits_module_struc o ON o.occ_key = m.sis_key
    WHERE m.sis_kind = 'module_occurrence'
    UNION
    SELECT m.mapping_id, o.mod_occ_bdo_id
    FROM int.mapping m JOIN stg.sits_module_struc o ON o.mod_code = m.sis_key AND (m.section = '' OR o.mav_occur = m.section)
    WHERE m.sis_kind = 'section'
)
SELECT
    m.mapping_id, m.instance, m.course_idnumber, m.sis_kind,
    o.mod_occ_bdo_id, o.mod_inst_bdo_id, o.mod_code, o.mav_occur, o.psl_code, o.ayr_code, o.ayr_start,
    o.start_date, o.end_date,
    m.min_level, m.group_sync
FROM candidate c
JOIN int.mapping m ON m.mapping_id = c.mapping_id
JOIN stg.sits_module_struc o ON o.mod_occ_bdo_id = c.mod_occ_bdo_id
CROSS JOIN int.setting s
WHERE (m.academic_year = '' OR o.ayr_start = m.ayr_start)
  AND (s.min_mod_occ_year = 0 OR o.ayr_start >= s.min_mod_occ_year)
