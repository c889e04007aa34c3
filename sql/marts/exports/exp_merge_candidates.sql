-- The merge list for tool_mergeusers (docs/formats.md §3): for each SITS
-- student with several accounts on a site, every other account merged
-- into the newest (highest user id), with the evidence. A student's
-- accounts are those whose idnumber is the student code (reason "same SITS
-- student code") and those without an idnumber whose e-mail equals, ignoring
-- case, that of one of them ("case-variant e-mail", or "same e-mail" when
-- it is equal): the account a SAML login creates beside the LDAP one. A
-- pair's reason is the e-mail one when either account was found by e-mail. An
-- account that would belong to two students is left out (it is in
-- mart.dq_case_variant_email). to_idnumber is the SIS identity the feeds
-- use, the student code, which the kept account must carry once the
-- removed one has been cleared. seq numbers a site's pairs in execution
-- order (there are no chains: every pair keeps the newest account).
-- description: duplicate accounts of one SITS student per site, newest account kept.
-- depends: stg.moodle_user, int.student, int.moodle_account
-- checks: unique(instance, seq), unique(instance, from_userid)
-- checks: not_null(instance, seq, from_userid, to_userid, from_username, to_username, to_idnumber, reason, evidence)
WITH emailed AS (
    SELECT DISTINCT ON (o.instance, o.user_id, c.idnumber)
        o.instance, c.idnumber AS student_code, o.user_id, o.username, o.idnumber, o.email, o.auth,
        CASE WHEN o.email = c.email THEN 'same e-mail' ELSE 'case-variant e-mail' END AS reason
    FROM stg.moodle_user o
    JOIN stg.moodle_user c ON c.instance = o.instance AND lower(c.email) = lower(o.email) AND c.idnumber IS NOT NULL
    JOIN int.student s ON s.student_code = c.idnumber
    WHERE o.idnumber IS NULL AND o.email IS NOT NULL
    ORDER BY o.instance, o.user_id, c.idnumber, (o.email = c.email) DESC
),
-- An account without idnumber claimed by two students is nobody's here.
claimed AS (
    SELECT e.* FROM emailed e
    WHERE NOT EXISTS (SELECT 1 FROM emailed x WHERE x.instance = e.instance AND x.user_id = e.user_id AND x.student_code <> e.student_code)
),
-- The students with several accounts on a site, found before their
-- accounts are gathered so that only those are.
person AS (
    SELECT a.instance, a.idnumber AS student_code
    FROM int.moodle_account a JOIN int.student s ON s.student_code = a.idnumber
    WHERE a.accounts > 1
    UNION
    SELECT instance, student_code FROM claimed
),
account AS (
    SELECT u.instance, p.student_code, u.user_id, u.username, u.idnumber, u.email, u.auth, 'same SITS student code' AS reason
    FROM person p
    JOIN stg.moodle_user u ON u.instance = p.instance AND u.idnumber = p.student_code
    UNION ALL
    SELECT * FROM claimed
),
grouped AS (
    SELECT a.*,
        count(*) OVER w AS accounts,
        max(a.user_id) OVER w AS keep_userid,
        string_agg(a.user_id || ' ' || a.username || ' (' || coalesce('idnumber ' || a.idnumber, 'no idnumber') || ', ' ||
                   coalesce(a.email, 'no e-mail') || ', ' || coalesce(a.auth, '?') || ')', '; ') OVER w AS accounts_text
    FROM account a
    WINDOW w AS (PARTITION BY a.instance, a.student_code ORDER BY a.user_id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
)
SELECT
    f.instance,
    row_number() OVER (PARTITION BY f.instance ORDER BY f.student_code, f.user_id) AS seq,
    f.user_id AS from_userid, k.user_id AS to_userid,
    f.username AS from_username, k.username AS to_username,
    coalesce(f.idnumber, '') AS from_idnumber, f.student_code AS to_idnumber,
    CASE WHEN f.reason = 'same SITS student code' THEN k.reason ELSE f.reason END AS reason,
    'SITS student ' || f.student_code || ' has ' || f.accounts || ' accounts: ' || f.accounts_text || '; keeping the newest, ' || k.user_id AS evidence,
    f.student_code
FROM grouped f
JOIN grouped k ON k.instance = f.instance AND k.student_code = f.student_code AND k.user_id = f.keep_userid
WHERE f.accounts > 1 AND f.user_id <> f.keep_userid
