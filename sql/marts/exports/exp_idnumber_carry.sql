-- The student codes to move once a merge is observed (the profile CSV
-- carries them, docs/formats.md §3-§4). tool_mergeusers moves enrolments but
-- no idnumber, so after a merge the removed account still carries the
-- student code and IMS Enterprise, enrol_dbuserrel and the profile feed
-- cannot tell the student's accounts apart. For each active student with a
-- merged account still carrying the code (int.duplicate_account.merged):
-- action 'clear' empties that account's idnumber and 'set' gives the code
-- to the kept account when it has none. The kept account is the one the
-- published merge list merged it into, when that is a live account of the
-- student; for a merge MIM did not send (an account suspended with no
-- enrolment left), the student's only live account. Otherwise, or when the
-- kept account carries another idnumber, nothing moves: action 'blocked'
-- on the merged account, with the reason.
-- description: student codes to move from merged-away accounts to the kept ones, through the profile CSV.
-- depends: int.duplicate_account, int.student
-- checks: unique(instance, user_id), not_null(instance, user_id, username, student_code, action, reason)
-- checks: accepted_values(action, 'set', 'clear', 'blocked')
WITH acct AS (
    SELECT a.*
    FROM int.duplicate_account a
    JOIN int.student s ON s.student_code = a.student_code AND s.active
),
gone AS (
    SELECT * FROM acct WHERE merged AND idnumber = student_code
),
live AS (
    SELECT instance, student_code, count(*) AS n, min(user_id) AS only_userid
    FROM acct WHERE NOT merged
    GROUP BY instance, student_code
),
-- The kept account of each student with a merged account carrying the code.
decided AS (
    SELECT g.instance, g.student_code,
        array_agg(DISTINCT g.merged_into) FILTER (WHERE g.merged_into IS NOT NULL) AS sent_into,
        bool_or(g.merged_into IS NULL) AS by_hand,
        coalesce(max(l.n), 0) AS live, max(l.only_userid) AS only_userid
    FROM gone g
    LEFT JOIN live l ON l.instance = g.instance AND l.student_code = g.student_code
    GROUP BY g.instance, g.student_code
),
kept AS (
    SELECT d.instance, d.student_code, k.user_id, k.username, k.idnumber, d.sent_into,
        CASE
            WHEN d.live = 0 THEN 'no account of the student is left in use'
            WHEN cardinality(d.sent_into) > 1 THEN 'merged into different accounts (' || array_to_string(d.sent_into, ', ') || ')'
            WHEN cardinality(d.sent_into) = 1 AND k.user_id IS NULL THEN
                'merged into account ' || d.sent_into[1] || ', which is not an account of the student in use'
            WHEN d.sent_into IS NULL AND d.live > 1 THEN d.live || ' accounts of the student are in use: merge them first'
            WHEN k.idnumber IS NOT NULL AND k.idnumber <> d.student_code THEN
                'the kept account ' || k.username || ' carries another idnumber, ' || k.idnumber
        END AS blocked
    FROM decided d
    LEFT JOIN acct k ON k.instance = d.instance AND k.student_code = d.student_code AND NOT k.merged
        AND k.user_id = CASE WHEN d.sent_into IS NOT NULL THEN d.sent_into[1] WHEN d.live = 1 THEN d.only_userid END
)
SELECT g.instance, g.user_id, g.username, g.student_code,
    CASE WHEN k.blocked IS NULL THEN 'clear' ELSE 'blocked' END AS action,
    CASE WHEN k.blocked IS NULL THEN '' END AS idnumber,
    k.user_id AS kept_userid,
    CASE WHEN k.blocked IS NOT NULL THEN k.blocked
         WHEN g.merged_into IS NOT NULL THEN 'merged into ' || k.username || ' by the merge list of run ' || g.merge_run || '; the code moves to it'
         ELSE 'suspended with no enrolment left (merged or retired by hand); the code moves to ' || k.username || ', the only account in use'
    END AS reason
FROM gone g
JOIN kept k ON k.instance = g.instance AND k.student_code = g.student_code
UNION ALL
SELECT k.instance, k.user_id, k.username, k.student_code, 'set', k.student_code, k.user_id,
    'kept account of student ' || k.student_code || ': it receives the code from ' ||
    (SELECT string_agg(g.username, ', ' ORDER BY g.user_id) FROM gone g WHERE g.instance = k.instance AND g.student_code = k.student_code)
FROM kept k
WHERE k.blocked IS NULL AND k.idnumber IS NULL
