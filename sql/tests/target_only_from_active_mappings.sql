-- description: every row of the target comes from active mappings of its
-- description: own site and course; an inactive mapping freezes its course,
-- description: so the target must not list it.
-- depends: mart.fct_enrolment_target
-- The query is a MATERIALIZED CTE so that it is planned for all its rows:
-- the runner reads a test through LIMIT, which otherwise steers the planner
-- to nested loops that never finish at scale.
WITH failing AS MATERIALIZED (
    SELECT t.instance, t.course_idnumber, t.role, t.person_kind, t.person_code, x.mapping_id,
        CASE WHEN m.mapping_id IS NULL THEN 'no such mapping'
             WHEN NOT m.active THEN 'inactive mapping'
             ELSE 'mapping of another course: ' || m.instance || ' ' || m.course_idnumber END AS problem
    FROM mart.fct_enrolment_target t
    CROSS JOIN LATERAL unnest(t.mapping_ids) AS x(mapping_id)
    LEFT JOIN ctl.course_mapping m ON m.mapping_id = x.mapping_id
    WHERE m.mapping_id IS NULL OR NOT m.active OR m.instance <> t.instance OR m.course_idnumber <> t.course_idnumber
)
SELECT * FROM failing
