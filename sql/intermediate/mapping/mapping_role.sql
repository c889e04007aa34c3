-- The roles of each active mapping with the SIS population each brings in
-- (ref.mim_role_source): registered_students, module_leaders or
-- group_tutors. A role with no row there brings in nobody (it is listed in
-- mart.dq_mapping_role).
-- description: roles of active mappings and the population each enrols.
-- depends: int.mapping
-- checks: unique(mapping_id, role, source), not_null(mapping_id, role, source)
SELECT DISTINCT m.mapping_id, m.instance, m.course_idnumber, r.role, rs.source
FROM int.mapping m
CROSS JOIN LATERAL unnest(m.roles) AS r(role)
JOIN ref.mim_role_source rs ON rs.role = r.role
