-- Every Moodle site the warehouse knows of (extracted, or named by a course
-- mapping or the configuration), with the idnumber prefix of the groups and
-- groupings MIM owns there (moodle[].group_prefix, copied into
-- ctl.config_site by every transform; mim: when the site is not
-- configured) and the authentication students log in with (main_auth:
-- moodle[].main_auth, or else the one most of the site's active accounts
-- carrying an idnumber have; NULL when none does).
-- description: Moodle sites with the options the marts use.
-- depends: stg.moodle_site, stg.moodle_course, stg.moodle_user
-- checks: unique(instance), not_null(instance, group_prefix, configured)
WITH usual_auth AS (
    SELECT instance, mode() WITHIN GROUP (ORDER BY auth) AS auth
    FROM stg.moodle_user
    WHERE idnumber IS NOT NULL AND auth IS NOT NULL AND NOT coalesce(suspended, false)
    GROUP BY instance
)
SELECT s.instance, coalesce(c.group_prefix, 'mim:') AS group_prefix, c.instance IS NOT NULL AS configured,
    coalesce(c.main_auth, ua.auth) AS main_auth
FROM (
    SELECT instance FROM stg.moodle_site
    UNION SELECT instance FROM stg.moodle_course
    UNION SELECT instance FROM ctl.course_mapping
    UNION SELECT instance FROM ctl.config_site
) s
LEFT JOIN ctl.config_site c ON c.instance = s.instance
LEFT JOIN usual_auth ua ON ua.instance = s.instance
