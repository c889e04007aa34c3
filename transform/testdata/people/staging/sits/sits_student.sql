-- checks: unique(student_code), not_null(student_code)
-- indexes: (student_code)
SELECT ref.to_text(payload ->> 'student_code') AS student_code,
       ref.to_text(payload ->> 'enrolment_status') AS enrolment_status
FROM raw.record WHERE source = 'sits' AND entity = 'student' AND deleted_run IS NULL