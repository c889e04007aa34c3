-- The operational settings the marts read from ctl.settings, typed, in one
-- row. A year setting of 0 (or one that is not a year) means no limit.
-- See `mim settings list` for what each means.
-- description: settings the marts read (ctl.settings), typed, one row.
-- checks: row_count_min(1), not_null(min_mod_occ_year, academic_year, tutor_role, group_sync_tutors)
SELECT
    coalesce(max(CASE WHEN key = 'min_mod_occ_year' AND value ~ '^[0-9]{1,4}$' THEN value::int END), 0) AS min_mod_occ_year,
    coalesce(max(CASE WHEN key = 'academic_year' AND value ~ '^[0-9]{1,4}$' THEN value::int END), 0)    AS academic_year,
    coalesce(max(CASE WHEN key = 'tutor_role' THEN nullif(btrim(value), '') END), 'personal_tutor')   AS tutor_role,
    coalesce(bool_or(key = 'group_sync_tutors' AND value = 'true'), false)                            AS group_sync_tutors
FROM ctl.settings
