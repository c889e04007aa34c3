-- Accounts without an idnumber whose e-mail equals, ignoring case, that of
-- an account carrying a SITS student code, and differs from it in case:
-- typically the second account a SAML login created beside the LDAP one.
-- matched_user_id and student_code are that student's account and code (the
-- lowest user id when several match); students lists every student code
-- matched (more than one: the merge list leaves the account out).
-- description: accounts without idnumber whose e-mail is a case variant of a student's account's.
-- depends: stg.moodle_user, int.student
-- checks: unique(instance, user_id), not_null(instance, user_id, email, matched_user_id, student_code)
WITH coded AS (
    SELECT u.instance, u.user_id, u.email, u.idnumber AS student_code
    FROM stg.moodle_user u
    JOIN int.student s ON s.student_code = u.idnumber
    WHERE u.email IS NOT NULL
)
SELECT
    o.instance, o.user_id, o.username, o.email, o.auth,
    min(c.user_id) AS matched_user_id,
    (array_agg(c.student_code ORDER BY c.user_id))[1] AS student_code,
    array_agg(DISTINCT c.student_code ORDER BY c.student_code) AS students
FROM stg.moodle_user o
JOIN coded c ON c.instance = o.instance AND lower(c.email) = lower(o.email) AND c.email <> o.email
WHERE o.idnumber IS NULL AND o.email IS NOT NULL
GROUP BY o.instance, o.user_id, o.username, o.email, o.auth
