-- CMIS_MOODLE_V_MODULE_GROUP: one row per CMIS teaching group, with the SITS
-- module occurrence it belongs to.
-- description: CMIS teaching groups (current rows of raw cmis/module_group).
-- checks: unique(group_bdo_id), not_null(group_bdo_id)
-- indexes: (mod_occ_bdo_id)
SELECT
    ref.to_text(r.payload ->> 'group_bdo_id')    AS group_bdo_id,
    ref.to_text(r.payload ->> 'mod_occ_bdo_id')  AS mod_occ_bdo_id,
    ref.to_text(r.payload ->> 'group_id')        AS group_id,
    ref.to_text(r.payload ->> 'group_code')      AS group_code,
    ref.to_text(r.payload ->> 'group_name')      AS group_name,
    ref.to_text(r.payload ->> 'mod_code')        AS mod_code,
    ref.to_text(r.payload ->> 'inst_code')       AS inst_code,
    ref.to_text(r.payload ->> 'setid')           AS setid,
    ref.to_int(r.payload ->> 'group_num')        AS group_num,
    ref.to_int(r.payload ->> 'capacity')         AS capacity
FROM raw.record r
WHERE r.source = 'cmis' AND r.instance = 'cmis' AND r.entity = 'module_group'
  AND r.deleted_run IS NULL
