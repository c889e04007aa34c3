-- UCL_BDO_V_MOODLE_STUDENT: one row per student. Case is kept as SITS sends
-- it (UPIs are upper case here and may be lower case in Moodle; marts
-- compare with upper()). personal_tutor_upi is the view's personal_tutor.
-- Whether a student enrols is decided in the marts from
-- ref.sits_enrolment_status and ref.sits_course_join_status.
-- description: SITS students (current rows of raw sits/student).
-- checks: unique(student_code), not_null(student_code)
-- indexes: (student_code)
SELECT
    ref.to_text(r.payload ->> 'student_code')        AS student_code,
    ref.to_text(r.payload ->> 'username')            AS username,
    ref.to_text(r.payload ->> 'upi')                 AS upi,
    ref.to_text(r.payload ->> 'firstname')           AS firstname,
    ref.to_text(r.payload ->> 'surname')             AS surname,
    ref.to_text(r.payload ->> 'student_name')        AS student_name,
    ref.to_text(r.payload ->> 'email')               AS email,
    ref.to_text(r.payload ->> 'dpt_bdo_id')          AS dpt_bdo_id,
    ref.to_text(r.payload ->> 'personal_tutor')      AS personal_tutor_upi,
    ref.to_text(r.payload ->> 'enrolment_status')    AS enrolment_status,
    ref.to_text(r.payload ->> 'course_join_status')  AS course_join_status
FROM raw.record r
WHERE r.source = 'sits' AND r.instance = 'sits' AND r.entity = 'student'
  AND r.deleted_run IS NULL
