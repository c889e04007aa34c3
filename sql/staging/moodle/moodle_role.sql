-- Roles seen in course enrolments (harvested by the extractor).
-- description: Moodle roles (raw moodle/roles).
-- checks: unique(instance, role_id), not_null(instance, role_id)
SELECT
    r.instance,
    coalesce(ref.jint(r.payload -> 'roleid'), ref.jint(to_jsonb(r.key))) AS role_id,
    ref.jtext(r.payload -> 'shortname')  AS shortname,
    ref.jtext(r.payload -> 'name')       AS name
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'roles' AND r.deleted_run IS NULL
