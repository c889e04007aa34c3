-- CMIS_MOODLE_V_GROUP_MEMBER: one row per student in a teaching group.
-- CMIS writes student codes with 9 digits, zero-padded ('025001234'); SITS
-- and Moodle idnumbers have 8. This is the one place that rule lives:
-- sits_student_code drops the padding zero of a 9-digit code and leaves any
-- other code as CMIS sent it. Join to SITS and Moodle on sits_student_code.
-- description: CMIS group membership (current rows of raw cmis/group_member).
-- checks: unique(group_bdo_id, cmis_student_code), not_null(group_bdo_id, cmis_student_code)
-- indexes: (group_bdo_id), (sits_student_code)
SELECT
    m.group_bdo_id,
    m.cmis_student_code,
    CASE WHEN m.cmis_student_code ~ '^0[0-9]{8}$' THEN substr(m.cmis_student_code, 2)
         ELSE m.cmis_student_code END AS sits_student_code,
    m.mod_occ_bdo_id,
    m.setid
FROM (
    SELECT
        ref.to_text(r.payload ->> 'group_bdo_id')    AS group_bdo_id,
        ref.to_text(r.payload ->> 'student_code')    AS cmis_student_code,
        ref.to_text(r.payload ->> 'mod_occ_bdo_id')  AS mod_occ_bdo_id,
        ref.to_text(r.payload ->> 'setid')           AS setid
    FROM raw.record r
    WHERE r.source = 'cmis' AND r.instance = 'cmis' AND r.entity = 'group_member'
      AND r.deleted_run IS NULL
) m
