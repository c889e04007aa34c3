-- Enrolment instances of the courses (raw moodle/enrol_methods): type is the
-- plugin (imsenterprise, flatfile, manual, self, cohort, guest, ...), enabled
-- its status. complete says whether the source lists every instance of the
-- course, disabled ones included (mim_source "database": a moodle-db site
-- reading mdl_enrol) or only what core_enrol_get_course_enrolment_methods
-- shows (mim_source "web_service": enabled self-describing instances only).
-- description: Moodle courses' enrolment instances and whether each is enabled.
-- checks: unique(instance, course_id, enrol_id), not_null(instance, course_id, enrol_id, method, enabled, complete)
-- indexes: (instance, course_id)
SELECT
    r.instance,
    coalesce(ref.to_int(r.payload ->> 'courseid'), ref.to_int(r.payload ->> 'mim_courseid')) AS course_id,
    ref.to_int(r.payload ->> 'id')                       AS enrol_id,
    ref.to_text(r.payload ->> 'type')                    AS method,
    ref.to_text(r.payload ->> 'name')                    AS name,
    coalesce(ref.to_bool(r.payload ->> 'status'), false) AS enabled,
    coalesce(r.payload ->> 'mim_source', '') = 'database' AS complete
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'enrol_methods' AND r.deleted_run IS NULL
