-- UCL_BDO_V_MOODLE_FACULTIES: one row per faculty.
-- description: SITS faculties (current rows of raw sits/faculties).
-- checks: unique(faculty_code), not_null(faculty_code)
SELECT
    ref.to_text(r.payload ->> 'dpt_fac_code') AS faculty_code,
    ref.to_text(r.payload ->> 'dpt_fac_name') AS faculty_name
FROM raw.record r
WHERE r.source = 'sits' AND r.instance = 'sits' AND r.entity = 'faculties'
  AND r.deleted_run IS NULL
