-- The accounts of each SITS student who has more than one on a site: those
-- carrying the student code (found_by 'same SITS student code') and those
-- without an idnumber whose e-mail equals, ignoring case, that of an
-- account carrying it ('same e-mail', or 'case-variant e-mail' when only the
-- case differs): the account a SAML login creates beside the LDAP one. An
-- account without idnumber that two students' accounts match is nobody's
-- here (it is in mart.dq_case_variant_email).
--
-- merged: the account is out of use after a merge, as Moodle shows it.
-- tool_mergeusers suspends the account it removes, moves its enrolments to
-- the kept one and suspends those both had; it changes no idnumber. So an
-- account is merged when it is suspended and either a merge list MIM
-- published before the site's last complete read of its users proposed
-- merging it away (ctl.merge_sent; merged_into is that list's kept account)
-- and none of its enrolments is active, or it has no enrolment at all on a
-- site whose enrolments are read (merged by hand, or retired).
-- description: accounts of students with several accounts on a site, and whether a merge took each out of use.
-- depends: stg.moodle_user, stg.moodle_enrolment, int.student
-- checks: unique(instance, student_code, user_id), unique(instance, user_id)
-- checks: not_null(instance, student_code, user_id, username, found_by, merged)
-- indexes: (instance, student_code), (instance, user_id)
WITH coded AS (
    SELECT u.instance, u.idnumber AS student_code, u.user_id, u.username, u.idnumber, u.email, u.auth,
        coalesce(u.suspended, false) AS suspended, u.last_access_at, 'same SITS student code'::text AS found_by
    FROM stg.moodle_user u
    JOIN int.student s ON s.student_code = u.idnumber
),
emailed AS (
    SELECT DISTINCT ON (o.instance, o.user_id, c.student_code)
        o.instance, c.student_code, o.user_id, o.username, o.idnumber, o.email, o.auth,
        coalesce(o.suspended, false) AS suspended, o.last_access_at,
        CASE WHEN o.email = c.email THEN 'same e-mail' ELSE 'case-variant e-mail' END AS found_by
    FROM stg.moodle_user o
    JOIN coded c ON c.instance = o.instance AND lower(c.email) = lower(o.email)
    WHERE o.idnumber IS NULL AND o.email IS NOT NULL
    ORDER BY o.instance, o.user_id, c.student_code, (o.email = c.email) DESC
),
claimed AS (
    SELECT e.* FROM emailed e
    WHERE NOT EXISTS (SELECT 1 FROM emailed x WHERE x.instance = e.instance AND x.user_id = e.user_id AND x.student_code <> e.student_code)
),
account AS (
    SELECT * FROM coded
    UNION ALL
    SELECT * FROM claimed
),
several AS (
    SELECT a.*, count(*) OVER (PARTITION BY a.instance, a.student_code) AS accounts
    FROM account a
),
-- The last merge list that proposed merging each account away, among those
-- published before the site's users were last read completely.
sent AS (
    SELECT DISTINCT ON (m.instance, m.from_userid) m.instance, m.from_userid, m.to_userid, m.run_id
    FROM ctl.merge_sent m
    JOIN raw.scope_read r ON r.source = 'moodle' AND r.instance = m.instance AND r.entity = 'users' AND r.scope = ''
                         AND r.complete_run > m.run_id
    ORDER BY m.instance, m.from_userid, m.run_id DESC
),
enrolled AS (
    SELECT e.instance, e.user_id, bool_or(NOT coalesce(e.suspended, false)) AS active
    FROM stg.moodle_enrolment e
    JOIN several a ON a.instance = e.instance AND a.user_id = e.user_id AND a.accounts > 1 AND a.suspended
    GROUP BY e.instance, e.user_id
)
SELECT
    a.instance, a.student_code, a.user_id, a.username, a.idnumber, a.email, a.auth, a.suspended, a.last_access_at,
    a.found_by, a.accounts,
    a.suspended AND (
        (s.from_userid IS NOT NULL AND NOT coalesce(e.active, false))
        OR (e.user_id IS NULL AND EXISTS (SELECT 1 FROM stg.moodle_enrolment x WHERE x.instance = a.instance))
    ) AS merged,
    CASE WHEN a.suspended AND s.from_userid IS NOT NULL AND NOT coalesce(e.active, false) THEN s.to_userid END AS merged_into,
    CASE WHEN a.suspended AND s.from_userid IS NOT NULL AND NOT coalesce(e.active, false) THEN s.run_id END AS merge_run
FROM several a
LEFT JOIN sent s ON s.instance = a.instance AND s.from_userid = a.user_id
LEFT JOIN enrolled e ON e.instance = a.instance AND e.user_id = a.user_id
WHERE a.accounts > 1
