-- Students the target puts in an existing course of a site who have no
-- account there (no account's idnumber is their student code): Moodle
-- skips them silently. target_courses counts their courses on the site.
-- description: students of the target without an account on the site.
-- depends: mart.fct_enrolment_target, int.student
-- checks: unique(instance, student_code), not_null(instance, student_code, target_courses)
SELECT t.instance, t.student_code, s.username, s.email,
    count(DISTINCT t.course_idnumber)::int AS target_courses
FROM mart.fct_enrolment_target t
JOIN int.student s ON s.student_code = t.student_code
WHERE t.person_kind = 'student' AND t.course_status = 'one' AND t.user_status = 'none'
GROUP BY t.instance, t.student_code, s.username, s.email
