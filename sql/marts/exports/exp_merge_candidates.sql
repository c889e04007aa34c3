-- The merge list for tool_mergeusers (docs/formats.md §4): for each SITS
-- student with several accounts on a site (int.duplicate_account), every
-- other account merged into the one the rules of exports.merge.keep
-- choose (ctl.config_merge_keep, in order; by default the account whose
-- username is the student's SITS username, then the one on the site's main
-- authentication, then the one carrying the student code, not suspended,
-- used last, newest). keep_reason names the rule that chose it over the
-- removed account. Accounts a merge already took out of use (suspended and
-- unenrolled, or merged as a published list proposed) are not proposed
-- again. A pair's reason is the e-mail one when either account was found
-- by e-mail. to_idnumber is the SIS identity the feeds use, the student
-- code, which the kept account carries once the merge is observed
-- (mart.exp_idnumber_carry). seq numbers a site's pairs in execution order
-- (there are no chains: every pair keeps the chosen account).
-- description: duplicate accounts of one SITS student per site, merged into the account the keep rules choose.
-- depends: int.duplicate_account, int.student, int.site
-- checks: unique(instance, seq), unique(instance, from_userid)
-- checks: not_null(instance, seq, from_userid, to_userid, from_username, to_username, to_idnumber, reason, keep_reason, evidence)
WITH live AS (
    SELECT a.*, s.username AS sis_username, site.main_auth, k.keys, k.rules
    FROM int.duplicate_account a
    JOIN int.student s ON s.student_code = a.student_code
    LEFT JOIN int.site site ON site.instance = a.instance
    CROSS JOIN LATERAL (
        SELECT array_agg(CASE r.rule
                WHEN 'sis_username' THEN CASE WHEN a.username = lower(s.username) THEN 0 ELSE 1 END
                WHEN 'main_auth'    THEN CASE WHEN a.auth = site.main_auth THEN 0 ELSE 1 END
                WHEN 'idnumber'     THEN CASE WHEN a.idnumber = a.student_code THEN 0 ELSE 1 END
                WHEN 'active'       THEN CASE WHEN a.suspended THEN 1 ELSE 0 END
                WHEN 'last_access'  THEN -coalesce(extract(epoch FROM a.last_access_at)::bigint, 0)
                WHEN 'newest'       THEN -a.user_id
                WHEN 'oldest'       THEN a.user_id
            END ORDER BY r.position) AS keys,
            array_agg(r.rule ORDER BY r.position) AS rules
        FROM ctl.config_merge_keep r
    ) k
    WHERE NOT a.merged
),
ranked AS (
    SELECT l.*,
        count(*) OVER w AS live_accounts,
        row_number() OVER (PARTITION BY l.instance, l.student_code ORDER BY l.keys, l.user_id DESC) AS rank,
        string_agg(l.user_id || ' ' || l.username || ' (' || coalesce('idnumber ' || l.idnumber, 'no idnumber') || ', ' ||
                   coalesce(l.email, 'no e-mail') || ', ' || coalesce(l.auth, '?') ||
                   CASE WHEN l.suspended THEN ', suspended' ELSE '' END || ')', '; ') OVER w AS accounts_text
    FROM live l
    WINDOW w AS (PARTITION BY l.instance, l.student_code ORDER BY l.user_id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
),
pair AS (
    SELECT f.*, k.user_id AS k_user_id, k.username AS k_username, k.auth AS k_auth, k.found_by AS k_found_by,
        (SELECT f.rules[i] FROM generate_subscripts(k.keys, 1) i WHERE k.keys[i] IS DISTINCT FROM f.keys[i] ORDER BY i LIMIT 1) AS decided_by
    FROM ranked f
    JOIN ranked k ON k.instance = f.instance AND k.student_code = f.student_code AND k.rank = 1
    WHERE f.live_accounts > 1 AND f.rank > 1
)
SELECT
    p.instance,
    row_number() OVER (PARTITION BY p.instance ORDER BY p.student_code, p.user_id) AS seq,
    p.user_id AS from_userid, p.k_user_id AS to_userid,
    p.username AS from_username, p.k_username AS to_username,
    coalesce(p.idnumber, '') AS from_idnumber, p.student_code AS to_idnumber,
    CASE WHEN p.found_by = 'same SITS student code' THEN p.k_found_by ELSE p.found_by END AS reason,
    CASE p.decided_by
        WHEN 'sis_username' THEN 'kept ' || p.k_username || ': the SITS username'
        WHEN 'main_auth'    THEN 'kept ' || p.k_username || ': ' || p.k_auth || ', the site''s main authentication (removed: ' || coalesce(p.auth, '?') || ')'
        WHEN 'idnumber'     THEN 'kept ' || p.k_username || ': it carries the student code'
        WHEN 'active'       THEN 'kept ' || p.k_username || ': not suspended'
        WHEN 'last_access'  THEN 'kept ' || p.k_username || ': used more recently'
        WHEN 'oldest'       THEN 'kept ' || p.k_username || ': the older account'
        ELSE 'kept ' || p.k_username || ': the newer account'
    END AS keep_reason,
    'SITS student ' || p.student_code || ' has ' || p.live_accounts || ' accounts: ' || p.accounts_text ||
        '; keeping ' || p.k_user_id || ' (' || coalesce(p.decided_by, 'newest') || ')' AS evidence,
    p.student_code
FROM pair p
