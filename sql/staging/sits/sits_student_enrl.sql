-- UCL_BDO_V_MOODLE_STUDENT_ENRL: a student's registration on a module
-- occurrence ("memberships"). reg_status is NEW/APP/CON/REJ; its level is in
-- ref.sits_registration_status.
-- description: SITS module registrations (current rows of raw sits/student_enrl).
-- checks: unique(student_code, mod_occ_bdo_id, mod_dpt_bdo_id), not_null(student_code, mod_occ_bdo_id)
-- indexes: (mod_occ_bdo_id), (student_code)
SELECT
    ref.to_text(r.payload ->> 'student_code')    AS student_code,
    ref.to_text(r.payload ->> 'mod_occ_bdo_id')  AS mod_occ_bdo_id,
    ref.to_text(r.payload ->> 'mod_dpt_bdo_id')  AS mod_dpt_bdo_id,
    ref.to_text(r.payload ->> 'reg_status')      AS reg_status,
    ref.to_text(r.payload ->> 'smo_sms')         AS smo_sms,
    ref.to_text(r.payload ->> 'spr_code')        AS spr_code
FROM raw.record r
WHERE r.source = 'sits' AND r.instance = 'sits' AND r.entity = 'student_enrl'
  AND r.deleted_run IS NULL
