-- description: the IMS memberships name only courses and users that exist
-- description: exactly once on their site (docs/formats.md §1.7: Moodle takes
-- description: whichever duplicate it finds, or skips an unknown one silently).
-- depends: mart.exp_ims_membership, stg.moodle_user, stg.moodle_course
-- The query is a MATERIALIZED CTE so that it is planned for all its rows:
-- the runner reads a test through LIMIT, which otherwise steers the planner
-- to nested loops that never finish at scale.
WITH failing AS MATERIALIZED (
    WITH account AS (
        SELECT instance, idnumber, count(*) AS n FROM stg.moodle_user WHERE idnumber IS NOT NULL GROUP BY instance, idnumber
    ),
    course AS (
        SELECT instance, idnumber, count(*) AS n FROM stg.moodle_course WHERE idnumber IS NOT NULL AND NOT is_site GROUP BY instance, idnumber
    )
    SELECT x.instance, x.course_idnumber, x.user_idnumber, x.roletype, coalesce(c.n, 0) AS courses, coalesce(a.n, 0) AS accounts
    FROM mart.exp_ims_membership x
    LEFT JOIN account a ON a.instance = x.instance AND a.idnumber = x.user_idnumber
    LEFT JOIN course c ON c.instance = x.instance AND c.idnumber = x.course_idnumber
    WHERE coalesce(a.n, 0) <> 1 OR coalesce(c.n, 0) <> 1
)
SELECT * FROM failing
