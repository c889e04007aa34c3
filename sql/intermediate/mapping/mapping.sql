-- The active course mappings (ctl.course_mapping, docs/contracts.md §2),
-- the only ones that feed the target. academic_year is a start year or ''
-- for any (ayr_start NULL for anything else, which matches nothing);
-- min_level is the level of min_reg_status (ref.sits_registration_status);
-- course_year_num is a numeric year-of-study filter ('1'), NULL for 'P',
-- '1A' or none.
-- description: active course mappings, parsed.
-- checks: unique(mapping_id), not_null(mapping_id, instance, course_idnumber, sis_kind, sis_key, roles, group_sync)
-- indexes: (mapping_id), (instance, course_idnumber)
SELECT
    m.mapping_id, m.instance, m.course_idnumber, m.sis_kind, m.sis_key,
    m.academic_year,
    CASE WHEN m.academic_year ~ '^[0-9]{4}$' THEN m.academic_year::int END      AS ayr_start,
    m.section, m.course_year,
    CASE WHEN m.course_year ~ '^[0-9]{1,3}$' THEN m.course_year::int END         AS course_year_num,
    m.min_reg_status,
    rs.level                                                                     AS min_level,
    m.roles, m.group_sync, m.origin
FROM ctl.course_mapping m
LEFT JOIN ref.sits_registration_status rs ON rs.code = m.min_reg_status
WHERE m.active
