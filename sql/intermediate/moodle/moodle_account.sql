-- The accounts of each site by idnumber (the SITS student code of a
-- student, the staff number of staff): how many carry it, and the account
-- when exactly one does. IMS Enterprise and enrol_dbuserrel look users up by
-- idnumber, so only an idnumber held by exactly one account can be fed.
-- description: Moodle accounts per site and idnumber.
-- depends: stg.moodle_user
-- checks: unique(instance, idnumber), not_null(instance, idnumber, accounts, newest_user_id)
-- indexes: (instance, idnumber), (idnumber)
SELECT
    u.instance,
    u.idnumber,
    count(*)::int                                       AS accounts,
    CASE WHEN count(*) = 1 THEN min(u.user_id) END      AS user_id,
    CASE WHEN count(*) = 1 THEN min(u.username) END     AS username,
    max(u.user_id)                                      AS newest_user_id,
    array_agg(u.user_id ORDER BY u.user_id)             AS user_ids
FROM stg.moodle_user u
WHERE u.idnumber IS NOT NULL
GROUP BY u.instance, u.idnumber
