-- Roles seen in course enrolments (harvested by the extractor).
-- description: Moodle roles (raw moodle/roles).
-- checks: unique(instance, role_id), not_null(instance, role_id)
SELECT
    r.instance,
    coalesce(ref.to_int(r.payload ->> 'roleid'), ref.to_int(r.key)) AS role_id,
    ref.to_text(r.payload ->> 'shortname')  AS shortname,
    ref.to_text(r.payload ->> 'name')       AS name
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'roles' AND r.deleted_run IS NULL
