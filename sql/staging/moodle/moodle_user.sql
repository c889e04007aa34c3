-- core_user_get_users: one row per account per site. Moodle usernames are
-- lower case; idnumber (the SITS student code or staff id) is NULL when
-- empty. Profile fields are in stg.moodle_user_field.
-- description: Moodle user accounts (raw moodle/users).
-- checks: unique(instance, user_id), not_null(instance, user_id, username)
-- indexes: (instance, idnumber), (instance, username), (instance, user_id)
SELECT
    r.instance,
    ref.to_int(r.payload ->> 'id')            AS user_id,
    ref.to_text(r.payload ->> 'username')     AS username,
    ref.to_text(r.payload ->> 'idnumber')     AS idnumber,
    ref.to_text(r.payload ->> 'email')        AS email,
    ref.to_text(r.payload ->> 'firstname')    AS firstname,
    ref.to_text(r.payload ->> 'lastname')     AS lastname,
    ref.to_text(r.payload ->> 'auth')         AS auth,
    ref.to_bool(r.payload ->> 'suspended')    AS suspended,
    ref.to_bool(r.payload ->> 'confirmed')    AS confirmed,
    ref.to_text(r.payload ->> 'department')   AS department,
    ref.to_text(r.payload ->> 'institution')  AS institution,
    ref.to_time(r.payload ->> 'firstaccess') AS first_access_at,
    ref.to_time(r.payload ->> 'lastaccess')  AS last_access_at
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'users' AND r.deleted_run IS NULL
