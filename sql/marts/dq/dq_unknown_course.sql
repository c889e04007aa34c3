-- Course idnumbers that active mappings of a site name but no course of
-- the site has (deleted, or the idnumber changed): their target rows go
-- nowhere (unknown_course in mart.enrolment_drift).
-- description: mapped course idnumbers missing from their Moodle site.
-- depends: int.mapping, int.moodle_course_idnumber, mart.fct_enrolment_target
-- checks: unique(instance, course_idnumber), not_null(instance, course_idnumber, active_mappings, target_rows)
SELECT m.instance, m.course_idnumber,
    count(*)::int AS active_mappings,
    array_agg(m.mapping_id ORDER BY m.mapping_id) AS mapping_ids,
    coalesce((SELECT count(*) FROM mart.fct_enrolment_target t
              WHERE t.instance = m.instance AND t.course_idnumber = m.course_idnumber), 0)::int AS target_rows
FROM int.mapping m
WHERE NOT EXISTS (SELECT 1 FROM int.moodle_course_idnumber c WHERE c.instance = m.instance AND c.idnumber = m.course_idnumber)
GROUP BY m.instance, m.course_idnumber
