-- description: every proposed merge keeps an account that is never itself
-- description: merged away, never merges an account into itself, never
-- description: proposes again an account a merge already took out of use, and
-- description: (under the default rules) never keeps a suffixed or other
-- description: account when one with the SITS username on the site's main
-- description: authentication is in use.
-- depends: mart.exp_merge_candidates, int.duplicate_account, int.student, int.site
-- The query is a MATERIALIZED CTE so that it is planned for all its rows:
-- the runner reads a test through LIMIT, which otherwise steers the planner
-- to nested loops that never finish at scale.
WITH failing AS MATERIALIZED (
    SELECT m.instance, m.seq, m.from_userid, m.to_userid, 'merges an account into itself' AS problem
    FROM mart.exp_merge_candidates m
    WHERE m.from_userid = m.to_userid
    UNION ALL
    SELECT m.instance, m.seq, m.from_userid, m.to_userid, 'the kept account is merged away by another pair'
    FROM mart.exp_merge_candidates m
    WHERE EXISTS (SELECT 1 FROM mart.exp_merge_candidates x WHERE x.instance = m.instance AND x.from_userid = m.to_userid)
    UNION ALL
    SELECT m.instance, m.seq, m.from_userid, m.to_userid, 'an account already merged is proposed again'
    FROM mart.exp_merge_candidates m
    JOIN int.duplicate_account a ON a.instance = m.instance AND a.user_id IN (m.from_userid, m.to_userid) AND a.merged
    UNION ALL
    SELECT m.instance, m.seq, m.from_userid, m.to_userid, 'an account with the SITS username on the main authentication is not kept'
    FROM mart.exp_merge_candidates m
    JOIN int.student s ON s.student_code = m.to_idnumber
    JOIN int.site site ON site.instance = m.instance
    JOIN int.duplicate_account a ON a.instance = m.instance AND a.student_code = m.to_idnumber AND NOT a.merged
                                 AND a.username = lower(s.username) AND a.auth = site.main_auth
    WHERE a.user_id <> m.to_userid
      AND (SELECT array_agg(rule ORDER BY position) FROM ctl.config_merge_keep) [1:2] = ARRAY['sis_username', 'main_auth']
)
SELECT * FROM failing
