-- UCL_BDO_V_MOODLE_STUDENT: one row per student. Case is kept as SITS sends
-- it (UPIs are upper case here and may be lower case in Moodle; marts
-- compare with upper()). personal_tutor_upi is the view's personal_tutor.
-- Whether a student enrols is decided in the marts from
-- ref.sits_enrolment_status and ref.sits_course_join_status.
-- description: SITS students (current rows of raw sits/student).
-- checks: unique(student_code), not_null(student_code)
-- indexes: (student_code)
SELECT
    ref.jtext(r.payload -> 'student_code')        AS student_code,
    ref.jtext(r.payload -> 'username')            AS username,
    ref.jtext(r.payload -> 'upi')                 AS upi,
    ref.jtext(r.payload -> 'firstname')           AS firstname,
    ref.jtext(r.payload -> 'surname')             AS surname,
    ref.jtext(r.payload -> 'student_name')        AS student_name,
    ref.jtext(r.payload -> 'email')               AS email,
    ref.jtext(r.payload -> 'dpt_bdo_id')          AS dpt_bdo_id,
    ref.jtext(r.payload -> 'personal_tutor')      AS personal_tutor_upi,
    ref.jtext(r.payload -> 'enrolment_status')    AS enrolment_status,
    ref.jtext(r.payload -> 'course_join_status')  AS course_join_status
FROM raw.record r
WHERE r.source = 'sits' AND r.instance = 'sits' AND r.entity = 'student'
  AND r.deleted_run IS NULL
