-- core_enrol_get_enrolled_users per course: one row per user enrolled in a
-- course (any enrolment method), with whether the enrolment is suspended
-- (mim_suspended: the user came back from the onlysuspended=1 read). Roles
-- are in stg.moodle_enrolment_role, groups in stg.moodle_group_member.
-- description: Moodle course enrolments (raw moodle/enrolments).
-- checks: unique(instance, course_id, user_id), not_null(instance, course_id, user_id, suspended)
-- indexes: (instance, course_id), (instance, user_id)
SELECT
    r.instance,
    coalesce(ref.jint(r.payload -> 'mim_courseid'), ref.jint(to_jsonb(split_part(r.key, ':', 1)))) AS course_id,
    ref.jint(r.payload -> 'id')                   AS user_id,
    ref.jtext(r.payload -> 'username')            AS username,
    ref.jtext(r.payload -> 'idnumber')            AS user_idnumber,
    ref.jbool(r.payload -> 'mim_suspended')       AS suspended,
    ref.jepoch(r.payload -> 'lastcourseaccess')   AS last_course_access_at
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'enrolments' AND r.deleted_run IS NULL
