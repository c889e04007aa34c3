-- core_enrol_get_enrolled_users per course: one row per user enrolled in a
-- course (any enrolment method), with whether the enrolment is suspended
-- (mim_suspended: the user came back from the onlysuspended=1 read). Roles
-- are in stg.moodle_enrolment_role, groups in stg.moodle_group_member;
-- roles_json and groups_json carry Moodle's arrays to those two models, so
-- the large enrolment payloads are parsed once, not three times.
-- description: Moodle course enrolments (raw moodle/enrolments).
-- checks: unique(instance, course_id, user_id), not_null(instance, course_id, user_id, suspended)
-- indexes: (instance, course_id), (instance, user_id)
SELECT
    r.instance,
    coalesce(ref.to_int(r.payload ->> 'mim_courseid'), ref.to_int(split_part(r.key, ':', 1))) AS course_id,
    ref.to_int(r.payload ->> 'id')                   AS user_id,
    ref.to_text(r.payload ->> 'username')            AS username,
    ref.to_text(r.payload ->> 'idnumber')            AS user_idnumber,
    ref.to_bool(r.payload ->> 'mim_suspended')       AS suspended,
    CASE WHEN jsonb_typeof(r.payload -> 'roles') = 'array' THEN r.payload -> 'roles' ELSE '[]' END   AS roles_json,
    CASE WHEN jsonb_typeof(r.payload -> 'groups') = 'array' THEN r.payload -> 'groups' ELSE '[]' END AS groups_json
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'enrolments' AND r.deleted_run IS NULL
