-- CMIS_MOODLE_V_GROUP_TUTOR: one row per staff member taking a group.
-- description: CMIS group tutors (current rows of raw cmis/group_tutor).
-- checks: unique(group_bdo_id, staff_upi), not_null(group_bdo_id)
SELECT
    ref.to_text(r.payload ->> 'group_bdo_id')  AS group_bdo_id,
    ref.to_text(r.payload ->> 'staff_upi')     AS staff_upi,
    ref.to_text(r.payload ->> 'lecturer_id')   AS lecturer_id
FROM raw.record r
WHERE r.source = 'cmis' AND r.instance = 'cmis' AND r.entity = 'group_tutor'
  AND r.deleted_run IS NULL
