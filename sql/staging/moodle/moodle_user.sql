-- core_user_get_users: one row per account per site. Moodle usernames are
-- lower case; idnumber (the SITS student code or staff id) is NULL when
-- empty. Profile fields are in stg.moodle_user_field.
-- description: Moodle user accounts (raw moodle/users).
-- checks: unique(instance, user_id), not_null(instance, user_id, username)
-- indexes: (instance, idnumber), (instance, username), (instance, user_id)
SELECT
    r.instance,
    ref.jint(r.payload -> 'id')            AS user_id,
    ref.jtext(r.payload -> 'username')     AS username,
    ref.jtext(r.payload -> 'idnumber')     AS idnumber,
    ref.jtext(r.payload -> 'email')        AS email,
    ref.jtext(r.payload -> 'firstname')    AS firstname,
    ref.jtext(r.payload -> 'lastname')     AS lastname,
    ref.jtext(r.payload -> 'auth')         AS auth,
    ref.jbool(r.payload -> 'suspended')    AS suspended,
    ref.jbool(r.payload -> 'confirmed')    AS confirmed,
    ref.jtext(r.payload -> 'department')   AS department,
    ref.jtext(r.payload -> 'institution')  AS institution,
    ref.jepoch(r.payload -> 'firstaccess') AS first_access_at,
    ref.jepoch(r.payload -> 'lastaccess')  AS last_access_at
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'users' AND r.deleted_run IS NULL
