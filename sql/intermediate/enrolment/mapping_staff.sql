-- The staff each active module mapping brings in, by UPI (upper case): the
-- module leader (MOD_LEADER_UPI of the occurrence's module instance) for a
-- role whose source is module_leaders, and the CMIS tutors of the
-- occurrence's teaching groups for a role whose source is group_tutors
-- (ref.mim_role_source). Programme, route, department and faculty
-- mappings bring in no staff.
-- description: staff (by UPI) brought into each active mapping's course, per role.
-- depends: int.mapping_occurrence, int.mapping_role, stg.sits_module_inst, stg.cmis_module_group, stg.cmis_group_tutor
-- checks: unique(mapping_id, role, staff_upi), not_null(mapping_id, instance, course_idnumber, role, staff_upi)
SELECT mapping_id, instance, course_idnumber, role, staff_upi, array_agg(DISTINCT source ORDER BY source) AS sources
FROM (
    SELECT mo.mapping_id, mo.instance, mo.course_idnumber, mr.role, mr.source, upper(mi.mod_leader_upi) AS staff_upi
    FROM int.mapping_occurrence mo
    JOIN int.mapping_role mr ON mr.mapping_id = mo.mapping_id AND mr.source = 'module_leaders'
    JOIN stg.sits_module_inst mi ON mi.mod_inst_bdo_id = mo.mod_inst_bdo_id
    WHERE mi.mod_leader_upi IS NOT NULL
    UNION ALL
    SELECT mo.mapping_id, mo.instance, mo.course_idnumber, mr.role, mr.source, upper(t.staff_upi)
    FROM int.mapping_occurrence mo
    JOIN int.mapping_role mr ON mr.mapping_id = mo.mapping_id AND mr.source = 'group_tutors'
    JOIN stg.cmis_module_group g ON g.mod_occ_bdo_id = mo.mod_occ_bdo_id
    JOIN stg.cmis_group_tutor t ON t.group_bdo_id = g.group_bdo_id
    WHERE t.staff_upi IS NOT NULL
) s
GROUP BY mapping_id, instance, course_idnumber, role, staff_upi
