-- Setting group_sync_tutors: CMIS tutors (CMIS_MOODLE_V_GROUP_TUTOR) become
-- members of the timetable groups they take, beside the students, in the
-- courses whose mapping syncs groups (mart.exp_group_target, member_role
-- the role that enrols group tutors, ref.mim_role_source group_tutors).
-- Off by default, as the incumbent did; turning it off again removes them
-- through group sync's ordinary, budgeted member removals.

-- +goose Up
INSERT INTO ctl.settings (key, value, value_type, description) VALUES
 ('group_sync_tutors', 'false', 'bool',
  'Make CMIS tutors members of the timetable groups they take (group sync), beside the students; they must be enrolled in the course (e.g. by a mapping listing the role whose source is group_tutors).')
ON CONFLICT (key) DO NOTHING;

-- +goose Down
DELETE FROM ctl.settings_history WHERE key = 'group_sync_tutors';
DELETE FROM ctl.settings WHERE key = 'group_sync_tutors';
