-- Active mappings whose SIS key finds nothing in SITS: no occurrence
-- (module_occurrence: by BDO id or occ_key; section: by module code and
-- MAV_OCCUR) or none left after the academic-year filters (the mapping's
-- year, min_mod_occ_year), no programme, route, department or faculty. A
-- mapping that finds its entity but nobody in it is not listed.
-- description: active mappings whose SIS key matches nothing.
-- depends: int.mapping, int.mapping_occurrence, stg.sits_module_struc, stg.sits_programme, stg.sits_route, stg.sits_department, stg.sits_faculties
-- checks: unique(mapping_id), not_null(mapping_id, instance, course_idnumber, sis_kind, sis_key, problem)
WITH resolved AS (
    SELECT mapping_id FROM int.mapping_occurrence
    UNION
    SELECT m.mapping_id FROM int.mapping m JOIN stg.sits_programme p ON p.prog_code = m.sis_key WHERE m.sis_kind = 'programme'
    UNION
    SELECT m.mapping_id FROM int.mapping m JOIN stg.sits_route r ON r.route_code = m.sis_key WHERE m.sis_kind = 'route'
    UNION
    SELECT m.mapping_id FROM int.mapping m JOIN stg.sits_department d ON d.dpt_bdo_id = m.sis_key WHERE m.sis_kind = 'department'
    UNION
    SELECT m.mapping_id FROM int.mapping m JOIN stg.sits_faculties f ON f.faculty_code = m.sis_key WHERE m.sis_kind = 'faculty'
),
-- Module mappings that name an occurrence of some academic year.
any_year AS (
    SELECT m.mapping_id FROM int.mapping m JOIN stg.sits_module_struc o ON o.mod_occ_bdo_id = m.sis_key WHERE m.sis_kind = 'module_occurrence'
    UNION
    SELECT m.mapping_id FROM int.mapping m JOIN stg.sits_module_struc o ON o.occ_key = m.sis_key WHERE m.sis_kind = 'module_occurrence'
    UNION
    SELECT m.mapping_id FROM int.mapping m JOIN stg.sits_module_struc o ON o.mod_code = m.sis_key AND (m.section = '' OR o.mav_occur = m.section)
    WHERE m.sis_kind = 'section'
)
SELECT m.mapping_id, m.instance, m.course_idnumber, m.sis_kind, m.sis_key, m.academic_year, m.section,
    CASE WHEN m.sis_kind IN ('module_occurrence', 'section') AND y.mapping_id IS NOT NULL
              THEN 'no occurrence of the academic year (the mapping''s, or min_mod_occ_year on)'
         WHEN m.sis_kind IN ('module_occurrence', 'section') THEN 'no such occurrence'
         ELSE 'no such ' || m.sis_kind
    END AS problem
FROM int.mapping m
LEFT JOIN resolved r ON r.mapping_id = m.mapping_id
LEFT JOIN any_year y ON y.mapping_id = m.mapping_id
WHERE r.mapping_id IS NULL
