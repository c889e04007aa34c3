-- Persons for the IMS Enterprise feed, for a site that opts in to sending
-- them: every student the target puts in an existing course of the site who
-- has no account (so Moodle may create one) or exactly one. From SITS:
-- username (lower case, as Moodle keeps it), names and e-mail; auth is the
-- existing account's (NULL for a new one: the export's default applies).
-- MIM never sends a person deletion.
-- description: IMS Enterprise persons per site (students of the target).
-- depends: mart.fct_enrolment_target, int.student, stg.moodle_user
-- checks: unique(instance, user_idnumber), not_null(instance, user_idnumber, account_exists)
WITH person AS (
    SELECT instance, student_code, max(user_id) AS user_id, bool_or(user_status = 'one') AS account_exists
    FROM mart.fct_enrolment_target
    WHERE person_kind = 'student' AND course_status = 'one' AND user_status IN ('none', 'one')
    GROUP BY instance, student_code
)
SELECT
    p.instance, p.student_code AS user_idnumber, lower(s.username) AS username, u.auth,
    s.firstname AS given, s.surname AS family, s.email,
    p.account_exists
FROM person p
JOIN int.student s ON s.student_code = p.student_code
LEFT JOIN stg.moodle_user u ON u.instance = p.instance AND u.user_id = p.user_id
