-- Users' custom profile fields, one row per account and field, unnested
-- from core_user_get_users' customfields (value as Moodle stores it; the
-- 'upi' field is how tutors are matched).
-- description: Moodle user profile field values (raw moodle/users, customfields).
-- checks: unique(instance, user_id, shortname), not_null(instance, user_id, shortname)
-- indexes: (instance, shortname, value)
SELECT
    r.instance,
    ref.to_int(r.payload ->> 'id')     AS user_id,
    ref.to_text(f ->> 'shortname')     AS shortname,
    ref.to_text(f ->> 'value')         AS value,
    ref.to_text(f ->> 'type')          AS type
FROM raw.record r
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(r.payload -> 'customfields') = 'array' THEN r.payload -> 'customfields' ELSE '[]' END) f
WHERE r.source = 'moodle' AND r.entity = 'users' AND r.deleted_run IS NULL
