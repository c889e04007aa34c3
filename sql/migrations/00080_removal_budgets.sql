-- Nothing wrongly taken away (issue 15): every removal has a budget and a
-- one-shot override that is deliberate, the extracts' completeness is judged,
-- and the warehouse's environment label is bound to the database it was
-- written in.
--
-- One-shot overrides get their own type. Setting one needs a reason, and
-- each arming is kept in ctl.override_arm: who armed it, why, until when,
-- and which run used it. An armed override lapses after the run that used it
-- (every guard of that run may use it) or after override_hours, whichever
-- comes first.

-- +goose Up
ALTER TABLE ctl.settings DROP CONSTRAINT settings_value_type_check;
ALTER TABLE ctl.settings ADD CONSTRAINT settings_value_type_check
    CHECK (value_type IN ('int', 'percent', 'bool', 'text', 'email', 'year', 'override'));
UPDATE ctl.settings SET value_type = 'override',
    description = 'One-shot: let the next export through despite a threshold breach; lapses after the run that uses it (or after override_hours). Policy: false unless agreed by the Service Operations Manager and the Service Owner.'
    WHERE key = 'threshold_override';
UPDATE ctl.settings SET value_type = 'override',
    description = 'One-shot: let the next group sync delete groups and groupings beyond the delete budget; lapses after the run that uses it (or after override_hours).'
    WHERE key = 'group_delete_override';
UPDATE ctl.settings SET description =
    'A course that would lose more than this share of its students in one export has its drops held back (a likely wrong mapping) while the rest goes out; course_drop_override lets them through once.'
    WHERE key = 'course_drop_percent';

INSERT INTO ctl.settings (key, value, value_type, description) VALUES
 ('override_hours', '24', 'int',
  'An armed one-shot override lapses after this many hours if no run has used it; it always lapses after the run that used it.'),
 ('course_drop_override', 'false', 'override',
  'One-shot: send the drops of the courses course_drop_percent holds back; lapses after the run that uses it (or after override_hours).'),
 ('member_remove_budget', '1000', 'int',
  'Most members one group sync may remove from the groups MIM owns on a site; more is refused unless member_remove_override is set.'),
 ('member_remove_budget_percent', '10', 'percent',
  'Most share of the members of the groups MIM owns on a site that one group sync may remove; more is refused unless member_remove_override is set.'),
 ('member_remove_override', 'false', 'override',
  'One-shot: let the next group sync remove members beyond member_remove_budget(_percent); lapses after the run that uses it (or after override_hours).'),
 ('group_member_drop_percent', '50', 'percent',
  'A MIM group that would lose more than this share of its members in one sync has its removals held back while the rest of the sync goes ahead.'),
 ('group_member_drop_override', 'false', 'override',
  'One-shot: send the member removals group_member_drop_percent holds back; lapses after the run that uses it (or after override_hours).'),
 ('completeness_override', 'false', 'override',
  'One-shot: accept the suspect extracts of the next run (an entity that came back empty, or shrank past its limit, against its last complete read) and land them, deletions included; lapses after the run that uses it (or after override_hours).');

CREATE TABLE ctl.override_arm (
    arm_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key        text        NOT NULL REFERENCES ctl.settings,
    armed_at   timestamptz NOT NULL DEFAULT now(),
    armed_by   text        NOT NULL,
    reason     text        NOT NULL CHECK (reason <> ''),
    expires_at timestamptz NOT NULL,                 -- lapses then if no run used it
    used_run   bigint      REFERENCES ctl.run ON DELETE SET NULL, -- the run that used it (every guard of that run may)
    ended_at   timestamptz,                          -- when it stopped being armed
    ended_how  text        CHECK (ended_how IN ('used', 'expired', 'disarmed')),
    ended_by   text,
    CHECK ((ended_at IS NULL) = (ended_how IS NULL))
);
CREATE UNIQUE INDEX override_arm_armed_idx ON ctl.override_arm (key) WHERE ended_at IS NULL;
CREATE INDEX override_arm_used_idx ON ctl.override_arm (key, used_run);

-- The environment label is bound to the warehouse's identity: the cluster's
-- system identifier and the database's OID. A restore into another cluster,
-- or a copy into another database, changes one of them, so a restored
-- production warehouse no longer passes for production and must be claimed.
ALTER TABLE ctl.deployment ADD COLUMN system_identifier bigint, ADD COLUMN database_oid bigint;
ALTER TABLE ctl.deployment_claim ADD COLUMN system_identifier bigint, ADD COLUMN database_oid bigint;
UPDATE ctl.deployment SET system_identifier = (SELECT system_identifier FROM pg_control_system()),
    database_oid = (SELECT oid::bigint FROM pg_database WHERE datname = current_database());

-- +goose Down
ALTER TABLE ctl.deployment_claim DROP COLUMN system_identifier, DROP COLUMN database_oid;
ALTER TABLE ctl.deployment DROP COLUMN system_identifier, DROP COLUMN database_oid;
DROP TABLE ctl.override_arm;
DELETE FROM ctl.settings_history WHERE key IN ('override_hours', 'course_drop_override', 'member_remove_budget',
    'member_remove_budget_percent', 'member_remove_override', 'group_member_drop_percent', 'group_member_drop_override',
    'completeness_override');
DELETE FROM ctl.settings WHERE key IN ('override_hours', 'course_drop_override', 'member_remove_budget',
    'member_remove_budget_percent', 'member_remove_override', 'group_member_drop_percent', 'group_member_drop_override',
    'completeness_override');
UPDATE ctl.settings SET value_type = 'bool' WHERE value_type = 'override';
ALTER TABLE ctl.settings DROP CONSTRAINT settings_value_type_check;
ALTER TABLE ctl.settings ADD CONSTRAINT settings_value_type_check
    CHECK (value_type IN ('int', 'percent', 'bool', 'text', 'email', 'year'));
