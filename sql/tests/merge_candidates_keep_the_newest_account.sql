-- description: every proposed merge keeps the newest account (highest user id)
-- description: of the student, merges into an account that is never itself
-- description: merged away, and never merges an account into itself.
-- depends: mart.exp_merge_candidates, stg.moodle_user
-- The query is a MATERIALIZED CTE so that it is planned for all its rows:
-- the runner reads a test through LIMIT, which otherwise steers the planner
-- to nested loops that never finish at scale.
WITH failing AS MATERIALIZED (
    SELECT m.instance, m.seq, m.from_userid, m.to_userid, 'from is not older than to' AS problem
    FROM mart.exp_merge_candidates m
    WHERE m.from_userid >= m.to_userid
    UNION ALL
    SELECT m.instance, m.seq, m.from_userid, m.to_userid, 'the kept account is merged away by another pair'
    FROM mart.exp_merge_candidates m
    WHERE EXISTS (SELECT 1 FROM mart.exp_merge_candidates x WHERE x.instance = m.instance AND x.from_userid = m.to_userid)
    UNION ALL
    SELECT m.instance, m.seq, m.from_userid, m.to_userid, 'a newer account carries the student code'
    FROM mart.exp_merge_candidates m
    WHERE EXISTS (SELECT 1 FROM stg.moodle_user u WHERE u.instance = m.instance AND u.idnumber = m.to_idnumber AND u.user_id > m.to_userid)
)
SELECT * FROM failing
