-- description: ref.sits_enrolment_status keeps at least one status that
-- description: enrols; an emptied or all-N table would unenrol every student.
SELECT 'no row of ref.sits_enrolment_status has enrol = true' AS problem
WHERE NOT EXISTS (SELECT 1 FROM ref.sits_enrolment_status WHERE enrol)
