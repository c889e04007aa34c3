-- depends: stg.sits_student
-- checks: unique(student_code), accepted_values(enrolment_status, 'E', 'XE')
SELECT s.student_code, s.enrolment_status
FROM stg.sits_student s JOIN ref.sits_enrolment_status e ON e.code = s.enrolment_status
WHERE e.enrol