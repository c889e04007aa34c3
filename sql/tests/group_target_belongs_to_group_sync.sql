-- description: every desired group is in a course with an active group_sync
-- description: mapping, carries its site's group prefix (MIM touches no other
-- description: group) and is its own grouping.
-- depends: mart.exp_group_target, int.site
-- The query is a MATERIALIZED CTE so that it is planned for all its rows:
-- the runner reads a test through LIMIT, which otherwise steers the planner
-- to nested loops that never finish at scale.
WITH failing AS MATERIALIZED (
    SELECT g.instance, g.courseid, g.course_idnumber, g.group_idnumber, 'no site group prefix ' || s.group_prefix AS problem
    FROM mart.exp_group_target g
    JOIN int.site s ON s.instance = g.instance
    WHERE NOT starts_with(g.group_idnumber, s.group_prefix) OR length(g.group_idnumber) <= length(s.group_prefix)
    UNION ALL
    SELECT g.instance, g.courseid, g.course_idnumber, g.group_idnumber, 'no active group_sync mapping of the course'
    FROM mart.exp_group_target g
    WHERE NOT EXISTS (SELECT 1 FROM ctl.course_mapping m
                      WHERE m.instance = g.instance AND m.course_idnumber = g.course_idnumber AND m.active AND m.group_sync)
    UNION ALL
    SELECT g.instance, g.courseid, g.course_idnumber, g.group_idnumber, 'grouping differs from its group'
    FROM mart.exp_group_target g
    WHERE g.grouping_idnumber IS DISTINCT FROM g.group_idnumber OR g.grouping_name IS DISTINCT FROM g.group_name
)
SELECT * FROM failing
