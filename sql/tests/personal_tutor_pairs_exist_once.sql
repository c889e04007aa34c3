-- description: the tutor table pairs only accounts whose idnumbers exist
-- description: exactly once on the site (docs/formats.md §4), students who enrol.
-- depends: mart.exp_personal_tutor, stg.moodle_user, stg.sits_student
-- The query is a MATERIALIZED CTE so that it is planned for all its rows:
-- the runner reads a test through LIMIT, which otherwise steers the planner
-- to nested loops that never finish at scale.
WITH failing AS MATERIALIZED (
    WITH account AS (
        SELECT instance, idnumber, count(*) AS n FROM stg.moodle_user WHERE idnumber IS NOT NULL GROUP BY instance, idnumber
    )
    SELECT p.instance, p.tutor_idnumber, p.student_idnumber, coalesce(t.n, 0) AS tutor_accounts, coalesce(s.n, 0) AS student_accounts,
        st.enrolment_status, st.course_join_status
    FROM mart.exp_personal_tutor p
    LEFT JOIN account t ON t.instance = p.instance AND t.idnumber = p.tutor_idnumber
    LEFT JOIN account s ON s.instance = p.instance AND s.idnumber = p.student_idnumber
    LEFT JOIN stg.sits_student st ON st.student_code = p.student_code
    WHERE coalesce(t.n, 0) <> 1 OR coalesce(s.n, 0) <> 1
       OR NOT EXISTS (SELECT 1 FROM ref.sits_enrolment_status es JOIN ref.sits_course_join_status js ON js.open
                      WHERE es.enrol AND es.code = st.enrolment_status AND js.code = st.course_join_status)
)
SELECT * FROM failing
