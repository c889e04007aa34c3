-- SITS students missing a field the feeds need: username (IMS person
-- userid, profile CSV key via the account), first name and surname (IMS
-- person names; Moodle requires them), e-mail, or any assignment
-- (programme, UG/PG and year level come from it). One row per student and
-- field; active says whether the student enrols.
-- description: SITS students with a missing field, one row per field.
-- depends: int.student
-- checks: unique(student_code, field), not_null(student_code, field, active)
-- checks: accepted_values(field, 'username', 'firstname', 'surname', 'email', 'assignment')
SELECT s.student_code, f.field, s.active
FROM int.student s
CROSS JOIN LATERAL (VALUES
    ('username', s.username IS NULL),
    ('firstname', s.firstname IS NULL),
    ('surname', s.surname IS NULL),
    ('email', s.email IS NULL),
    ('assignment', s.assignments = 0)) AS f(field, missing)
WHERE f.missing
