-- Group sync verifies what it wrote (export/groupsync, checkApplied): a write
-- Moodle answered without an error that a re-read of the course does not
-- show gets a second row, outcome 'void', and is sent once more in small
-- batches; those rows have retry = true.

-- +goose Up
ALTER TABLE ctl.group_sync_action DROP CONSTRAINT group_sync_action_outcome_check;
ALTER TABLE ctl.group_sync_action ADD CONSTRAINT group_sync_action_outcome_check
    CHECK (outcome IN ('applied', 'failed', 'not_attempted', 'void'));
ALTER TABLE ctl.group_sync_action ADD COLUMN retry boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE ctl.group_sync_action DROP COLUMN retry;
DELETE FROM ctl.group_sync_action WHERE outcome = 'void';
ALTER TABLE ctl.group_sync_action DROP CONSTRAINT group_sync_action_outcome_check;
ALTER TABLE ctl.group_sync_action ADD CONSTRAINT group_sync_action_outcome_check
    CHECK (outcome IN ('applied', 'failed', 'not_attempted'));
