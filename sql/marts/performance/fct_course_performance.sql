-- Grades and completion per course and user, where they were extracted
-- (moodle[].grades and .completion are off by default): the course total
-- (the grade item of type course) with its range and as a percentage, how
-- many other items are graded, and completion with progress. A user with
-- grades but no completion entry, or the reverse, has a row with the other
-- side NULL.
-- description: course grades and completion per site, course and user.
-- depends: stg.moodle_grade, stg.moodle_grade_item, stg.moodle_completion, stg.moodle_course, stg.moodle_user
-- checks: unique(instance, course_id, user_id), not_null(instance, course_id, user_id)
WITH grade AS (
    SELECT g.instance, g.course_id, g.user_id,
        max(g.grade_raw) FILTER (WHERE i.item_type = 'course')                         AS course_grade,
        max(coalesce(g.grade_min, i.grade_min)) FILTER (WHERE i.item_type = 'course')   AS grade_min,
        max(coalesce(g.grade_max, i.grade_max)) FILTER (WHERE i.item_type = 'course')   AS grade_max,
        (count(g.grade_raw) FILTER (WHERE i.item_type IS DISTINCT FROM 'course' AND i.item_type IS DISTINCT FROM 'category'))::int AS graded_items,
        max(g.graded_at)                                                               AS last_graded_at
    FROM stg.moodle_grade g
    LEFT JOIN stg.moodle_grade_item i ON i.instance = g.instance AND i.course_id = g.course_id AND i.item_id = g.item_id
    GROUP BY g.instance, g.course_id, g.user_id
),
both_sides AS (
    SELECT coalesce(g.instance, c.instance) AS instance, coalesce(g.course_id, c.course_id) AS course_id,
        coalesce(g.user_id, c.user_id) AS user_id,
        g.course_grade, g.grade_min, g.grade_max, g.graded_items, g.last_graded_at,
        c.completed, c.progress, c.last_access_at
    FROM grade g
    FULL JOIN stg.moodle_completion c ON c.instance = g.instance AND c.course_id = g.course_id AND c.user_id = g.user_id
)
SELECT
    b.instance, b.course_id, mc.idnumber AS course_idnumber, b.user_id, u.idnumber AS user_idnumber,
    b.course_grade, b.grade_min, b.grade_max,
    round(100 * (b.course_grade - b.grade_min) / nullif(b.grade_max - b.grade_min, 0), 2) AS grade_percent,
    b.graded_items, b.last_graded_at,
    b.completed, b.progress, b.last_access_at
FROM both_sides b
LEFT JOIN stg.moodle_course mc ON mc.instance = b.instance AND mc.course_id = b.course_id
LEFT JOIN stg.moodle_user u ON u.instance = b.instance AND u.user_id = b.user_id
