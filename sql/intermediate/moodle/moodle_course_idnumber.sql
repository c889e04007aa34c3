-- The courses of each site by idnumber (a mapping names its course by
-- idnumber, as IMS Enterprise does): how many have it, and the course when
-- exactly one does. The site's front page is never a course here.
-- description: Moodle courses per site and idnumber.
-- depends: stg.moodle_course
-- checks: unique(instance, idnumber), not_null(instance, idnumber, courses)
-- indexes: (instance, idnumber)
SELECT
    c.instance,
    c.idnumber,
    count(*)::int                                       AS courses,
    CASE WHEN count(*) = 1 THEN min(c.course_id) END    AS course_id,
    array_agg(c.course_id ORDER BY c.course_id)         AS course_ids
FROM stg.moodle_course c
WHERE c.idnumber IS NOT NULL AND NOT c.is_site
GROUP BY c.instance, c.idnumber
