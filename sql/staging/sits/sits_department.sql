-- UCL_BDO_V_MOODLE_DEPARTMENT: one row per department. department_key is
-- the raw key: the BDO id, or code:<dpt_code> when the id is empty (UCL's
-- dump defaults the id to '', which staging turns into NULL).
-- description: SITS departments (current rows of raw sits/department).
-- checks: unique(department_key), not_null(department_key)
SELECT
    r.key                                   AS department_key,
    ref.to_text(r.payload ->> 'dpt_bdo_id')    AS dpt_bdo_id,
    ref.to_text(r.payload ->> 'dpt_code')      AS dpt_code,
    ref.to_text(r.payload ->> 'dpt_name')      AS dpt_name,
    ref.to_text(r.payload ->> 'dpt_fac_code')  AS faculty_code
FROM raw.record r
WHERE r.source = 'sits' AND r.instance = 'sits' AND r.entity = 'department'
  AND r.deleted_run IS NULL
