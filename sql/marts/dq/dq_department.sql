-- SITS departments with a quirk of real SITS data: no faculty (their
-- courses cannot be placed by faculty), or no BDO id (keyed by code: a
-- department mapping cannot name them).
-- description: SITS departments without a faculty or without a BDO id.
-- depends: stg.sits_department
-- checks: unique(department_key, problem), not_null(department_key, problem)
-- checks: accepted_values(problem, 'no faculty', 'no BDO id')
SELECT d.department_key, d.dpt_code, d.dpt_name, p.problem
FROM stg.sits_department d
CROSS JOIN LATERAL (VALUES ('no faculty', d.faculty_code IS NULL), ('no BDO id', d.dpt_bdo_id IS NULL)) AS p(problem, applies)
WHERE p.applies
