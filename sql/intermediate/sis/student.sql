-- A SITS student with the status rules of the ref tables applied and one
-- programme assignment. active: the enrolment status enrols
-- (ref.sits_enrolment_status) and the course join is open
-- (ref.sits_course_join_status); a code missing from either table does not
-- enrol. A student on two routes has two assignments; the profile fields
-- show the first by its key (assignments says how many there are).
-- personal_tutor_upi is upper-cased, as UPIs are compared.
-- description: SITS students with the status rules applied and their primary assignment.
-- depends: stg.sits_student, stg.sits_assignment, stg.sits_programme
-- checks: unique(student_code), not_null(student_code, active, assignments)
-- indexes: (student_code)
WITH primary_assignment AS (
    SELECT DISTINCT ON (a.student_code)
        a.student_code, a.prog_code, a.route_code, a.dpt_bdo_id, a.faculty_code, a.post_undergrad,
        a.course_year, a.year_of_study,
        count(*) OVER (PARTITION BY a.student_code) AS assignments
    FROM stg.sits_assignment a
    WHERE a.student_code IS NOT NULL
    ORDER BY a.student_code, a.assignment_key
),
-- A programme's name from any of its departments, for an assignment whose
-- department has no row of that programme.
programme AS (
    SELECT DISTINCT ON (p.prog_code) p.prog_code, p.prog_name
    FROM stg.sits_programme p
    WHERE p.prog_name IS NOT NULL
    ORDER BY p.prog_code, p.dpt_bdo_id NULLS LAST
)
SELECT
    s.student_code, s.username, s.upi, s.firstname, s.surname, s.student_name, s.email, s.dpt_bdo_id,
    upper(s.personal_tutor_upi)                               AS personal_tutor_upi,
    s.enrolment_status, s.course_join_status,
    coalesce(es.enrol, false) AND coalesce(js.open, false)    AS active,
    a.prog_code,
    coalesce(pd.prog_name, p.prog_name)                       AS prog_name,
    a.route_code, a.faculty_code, a.post_undergrad, a.course_year, a.year_of_study,
    coalesce(a.assignments, 0)::int                           AS assignments
FROM stg.sits_student s
LEFT JOIN ref.sits_enrolment_status es ON es.code = s.enrolment_status
LEFT JOIN ref.sits_course_join_status js ON js.code = s.course_join_status
LEFT JOIN primary_assignment a ON a.student_code = s.student_code
LEFT JOIN stg.sits_programme pd ON pd.prog_code = a.prog_code AND pd.dpt_bdo_id = a.dpt_bdo_id
LEFT JOIN programme p ON p.prog_code = a.prog_code
WHERE s.student_code IS NOT NULL
