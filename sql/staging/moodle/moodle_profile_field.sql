-- The custom profile fields each site defines (harvested from users).
-- description: Moodle custom profile fields (raw moodle/profile_fields).
-- checks: unique(instance, shortname), not_null(instance, shortname)
SELECT
    r.instance,
    coalesce(ref.to_text(r.payload ->> 'shortname'), r.key) AS shortname,
    ref.to_text(r.payload ->> 'name')                       AS name,
    ref.to_text(r.payload ->> 'type')                       AS type
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'profile_fields' AND r.deleted_run IS NULL
