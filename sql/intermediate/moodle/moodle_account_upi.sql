-- The accounts of each site by UPI, the profile field 'upi' that LDAP
-- fills (upper-cased: LDAP sometimes delivers it in lower case). Staff are
-- found this way: module leaders, personal tutors and CMIS group tutors are
-- UPIs in SITS and CMIS. user_idnumber is the idnumber of the one account,
-- when exactly one carries the UPI (NULL if that account has none).
-- description: Moodle accounts per site and UPI profile field.
-- depends: stg.moodle_user, stg.moodle_user_field
-- checks: unique(instance, upi), not_null(instance, upi, accounts)
-- indexes: (instance, upi)
SELECT
    f.instance,
    upper(f.value)                                      AS upi,
    count(*)::int                                       AS accounts,
    CASE WHEN count(*) = 1 THEN min(f.user_id) END      AS user_id,
    CASE WHEN count(*) = 1 THEN min(u.idnumber) END     AS user_idnumber,
    CASE WHEN count(*) = 1 THEN min(u.username) END     AS username,
    array_agg(f.user_id ORDER BY f.user_id)             AS user_ids
FROM stg.moodle_user_field f
JOIN stg.moodle_user u ON u.instance = f.instance AND u.user_id = f.user_id
WHERE f.shortname = 'upi' AND f.value IS NOT NULL
GROUP BY f.instance, upper(f.value)
