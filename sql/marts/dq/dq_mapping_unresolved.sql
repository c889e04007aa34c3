-- Active mappings whose SIS key finds nothing in SITS: no occurrence
-- (module_occurrence: by BDO id or occ_key; section: by module code and
-- MAV_OCCUR) or none left after the academic-year filters (the mapping's
-- year, min_mod_occ_year), no programme, route, department or faculty. A
-- mapping that finds its entity but nobody in it is not listed.
-- description: active mappings whose SIS key matches nothing.
-- depends: int.mapping, int.mapping_occurrence, stg.sits_module_struc, stg.sits_programme, stg.sits_route, stg.sits_department, stg.sits_faculties
-- checks: unique(mapping_id), not_null(mapping_id, instance, course_idnumber, sis_kind, sis_key, problem)
SELECT m.mapping_id, m.instance, m.course_idnumber, m.sis_kind, m.sis_key, m.academic_year, m.section,
    CASE
        WHEN m.sis_kind IN ('module_occurrence', 'section') AND EXISTS (
                SELECT 1 FROM stg.sits_module_struc o
                WHERE (m.sis_kind = 'module_occurrence' AND (o.mod_occ_bdo_id = m.sis_key OR o.occ_key = m.sis_key))
                   OR (m.sis_kind = 'section' AND o.mod_code = m.sis_key AND (m.section = '' OR o.mav_occur = m.section)))
            THEN 'no occurrence of the academic year (the mapping''s, or min_mod_occ_year on)'
        WHEN m.sis_kind IN ('module_occurrence', 'section') THEN 'no such occurrence'
        ELSE 'no such ' || m.sis_kind
    END AS problem
FROM int.mapping m
WHERE CASE m.sis_kind
    WHEN 'module_occurrence' THEN NOT EXISTS (SELECT 1 FROM int.mapping_occurrence mo WHERE mo.mapping_id = m.mapping_id)
    WHEN 'section' THEN NOT EXISTS (SELECT 1 FROM int.mapping_occurrence mo WHERE mo.mapping_id = m.mapping_id)
    WHEN 'programme' THEN NOT EXISTS (SELECT 1 FROM stg.sits_programme p WHERE p.prog_code = m.sis_key)
    WHEN 'route' THEN NOT EXISTS (SELECT 1 FROM stg.sits_route r WHERE r.route_code = m.sis_key)
    WHEN 'department' THEN NOT EXISTS (SELECT 1 FROM stg.sits_department d WHERE d.dpt_bdo_id = m.sis_key)
    WHEN 'faculty' THEN NOT EXISTS (SELECT 1 FROM stg.sits_faculties f WHERE f.faculty_code = m.sis_key)
    ELSE true
END
