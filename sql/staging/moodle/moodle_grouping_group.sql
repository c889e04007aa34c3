-- The groups in each grouping, unnested from the groupings' mim_groupids
-- (the extractor adds them from core_group_get_groupings).
-- description: Moodle grouping membership of groups (raw moodle/groupings, mim_groupids).
-- checks: unique(instance, grouping_id, group_id), not_null(instance, grouping_id, group_id)
SELECT
    r.instance,
    ref.to_int(r.payload ->> 'id')  AS grouping_id,
    ref.to_int(g #>> '{}')                  AS group_id
FROM raw.record r
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(r.payload -> 'mim_groupids') = 'array' THEN r.payload -> 'mim_groupids' ELSE '[]' END) g
WHERE r.source = 'moodle' AND r.entity = 'groupings' AND r.deleted_run IS NULL
