-- Moodle courses with an idnumber that no mapping (active or not) names:
-- nothing feeds them. occurrence_match says whether the idnumber is the
-- occ_key of a SITS module occurrence (a course a mapping rule, or a quick
-- import, could map), and with its academic year.
-- description: Moodle courses with an idnumber but no course mapping.
-- depends: stg.moodle_course, stg.sits_module_struc
-- checks: unique(instance, course_id), not_null(instance, course_id, course_idnumber, occurrence_match)
SELECT c.instance, c.course_id, c.idnumber AS course_idnumber, c.shortname, c.visible,
    o.mod_occ_bdo_id IS NOT NULL AS occurrence_match, o.ayr_start
FROM stg.moodle_course c
LEFT JOIN LATERAL (SELECT mod_occ_bdo_id, ayr_start FROM stg.sits_module_struc s WHERE s.occ_key = c.idnumber
                   ORDER BY mod_occ_bdo_id LIMIT 1) o ON true
WHERE c.idnumber IS NOT NULL AND NOT c.is_site
  AND NOT EXISTS (SELECT 1 FROM ctl.course_mapping m WHERE m.instance = c.instance AND m.course_idnumber = c.idnumber)
