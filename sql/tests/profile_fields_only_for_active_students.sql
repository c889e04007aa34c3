-- description: the profile feed has rows only for accounts of active students
-- description: (their enrolment status enrols and their course join is open),
-- description: keyed by the account's username; a row that moves a student code
-- description: after a merge (carry) is one mart.exp_idnumber_carry holds.
-- depends: mart.exp_profile_fields, stg.moodle_user, stg.sits_student, mart.exp_idnumber_carry
-- The query is a MATERIALIZED CTE so that it is planned for all its rows:
-- the runner reads a test through LIMIT, which otherwise steers the planner
-- to nested loops that never finish at scale.
WITH failing AS MATERIALIZED (
    SELECT p.instance, p.username, p.student_number
    FROM mart.exp_profile_fields p
    WHERE p.carry IS NULL AND NOT EXISTS (
            SELECT 1 FROM stg.moodle_user u
            JOIN stg.sits_student st ON st.student_code = u.idnumber
            JOIN ref.sits_enrolment_status es ON es.code = st.enrolment_status AND es.enrol
            JOIN ref.sits_course_join_status js ON js.code = st.course_join_status AND js.open
            WHERE u.instance = p.instance AND u.username = p.username AND u.idnumber = p.student_number)
    UNION ALL
    SELECT p.instance, p.username, p.student_number
    FROM mart.exp_profile_fields p
    WHERE p.carry IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM mart.exp_idnumber_carry c
            WHERE c.instance = p.instance AND c.user_id = p.user_id AND c.action = p.carry AND c.idnumber = p.idnumber)
)
SELECT * FROM failing
