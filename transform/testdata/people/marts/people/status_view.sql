-- depends: mart.active_students
-- materialized: view
SELECT enrolment_status, count(*) AS students FROM mart.active_students GROUP BY 1