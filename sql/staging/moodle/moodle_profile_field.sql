-- The custom profile fields each site defines (harvested from users).
-- description: Moodle custom profile fields (raw moodle/profile_fields).
-- checks: unique(instance, shortname), not_null(instance, shortname)
SELECT
    r.instance,
    coalesce(ref.jtext(r.payload -> 'shortname'), r.key) AS shortname,
    ref.jtext(r.payload -> 'name')                       AS name,
    ref.jtext(r.payload -> 'type')                       AS type
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'profile_fields' AND r.deleted_run IS NULL
