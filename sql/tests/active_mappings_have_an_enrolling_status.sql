-- description: every active course mapping names a minimum registration
-- description: status that exists in ref.sits_registration_status and
-- description: enrols (level > 0); otherwise the mapping silently enrols no one.
SELECT m.mapping_id, m.instance, m.course_idnumber, m.sis_kind, m.sis_key, m.min_reg_status
FROM ctl.course_mapping m
LEFT JOIN ref.sits_registration_status s ON s.code = m.min_reg_status
WHERE m.active AND (s.code IS NULL OR s.level = 0)
