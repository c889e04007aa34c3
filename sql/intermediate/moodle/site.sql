-- Every Moodle site the warehouse knows of (extracted, or named by a course
-- mapping or the configuration), with the idnumber prefix of the groups and
-- groupings MIM owns there (moodle[].group_prefix, copied into
-- ctl.config_site by every transform; mim: when the site is not
-- configured).
-- description: Moodle sites with the options the marts use.
-- depends: stg.moodle_site, stg.moodle_course
-- checks: unique(instance), not_null(instance, group_prefix, configured)
SELECT s.instance, coalesce(c.group_prefix, 'mim:') AS group_prefix, c.instance IS NOT NULL AS configured
FROM (
    SELECT instance FROM stg.moodle_site
    UNION SELECT instance FROM stg.moodle_course
    UNION SELECT instance FROM ctl.course_mapping
    UNION SELECT instance FROM ctl.config_site
) s
LEFT JOIN ctl.config_site c ON c.instance = s.instance
