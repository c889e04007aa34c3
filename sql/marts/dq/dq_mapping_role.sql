-- Roles of active mappings that enrol nobody or cannot be fed: a role with
-- no row in ref.mim_role_source (no SIS population), or with no IMS
-- roletype in exports.ims_roles (ctl.config_ims_role; its target rows stay
-- out of mart.exp_ims_membership).
-- description: roles of active mappings without a population or an IMS roletype.
-- depends: int.mapping
-- checks: unique(mapping_id, role), not_null(mapping_id, instance, course_idnumber, role, problem)
SELECT m.mapping_id, m.instance, m.course_idnumber, r.role,
    CASE WHEN NOT EXISTS (SELECT 1 FROM ref.mim_role_source s WHERE s.role = r.role)
         THEN 'no SIS population (ref.mim_role_source)'
         ELSE 'no IMS roletype (exports.ims_roles)' END AS problem
FROM int.mapping m
CROSS JOIN LATERAL (SELECT DISTINCT unnest(m.roles) AS role) r
WHERE NOT EXISTS (SELECT 1 FROM ref.mim_role_source s WHERE s.role = r.role)
   OR NOT EXISTS (SELECT 1 FROM ctl.config_ims_role c WHERE c.role = r.role)
