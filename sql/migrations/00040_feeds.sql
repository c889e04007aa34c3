-- Feeds (export/feeds, export/tutor): what MIM last told Moodle through the
-- profile CSV, and the personal-tutor table enrol_dbuserrel reads.

-- +goose Up

-- The tables Moodle reads directly. Moodle's database role gets SELECT on
-- the per-site views only (a grant the deployment makes, not MIM).
CREATE SCHEMA IF NOT EXISTS mim_export;

-- The personal-tutor relationships of every site (docs/formats.md §4),
-- as last published. `mim export` replaces one site's rows in a single
-- transaction, so enrol_dbuserrel (which reads the whole relation and removes
-- every assignment it does not find) never sees a partial load, and keeps a
-- view per site, mim_export.personal_tutor_<site>, for the plugin's
-- remoteenroltable.
CREATE TABLE mim_export.personal_tutor (
    instance         text NOT NULL,                  -- Moodle site name
    role_shortname   text NOT NULL CHECK (role_shortname <> '' AND position('|' IN role_shortname) = 0),
    tutor_idnumber   text NOT NULL CHECK (tutor_idnumber <> '' AND position('|' IN tutor_idnumber) = 0),
    student_idnumber text NOT NULL CHECK (student_idnumber <> '' AND position('|' IN student_idnumber) = 0),
    student_code     text,                           -- informational: the plugin ignores these three
    tutor_upi        text,
    source           text,
    export_id        bigint NOT NULL REFERENCES ctl.export_run,
    PRIMARY KEY (instance, role_shortname, tutor_idnumber, student_idnumber)
);

-- The profile-field values each account was last sent (profile CSV), so the
-- next file carries only the accounts whose values changed: every row Moodle
-- applies fires a user_updated event. fields maps a profile field shortname
-- to the value written ('' for an empty cell).
CREATE TABLE ctl.published_profile (
    instance  text   NOT NULL,
    username  text   NOT NULL,
    fields    jsonb  NOT NULL,
    export_id bigint NOT NULL REFERENCES ctl.export_run,
    PRIMARY KEY (instance, username)
);

CREATE INDEX guard_event_run_idx ON ctl.guard_event (run_id);

-- +goose Down
DROP INDEX ctl.guard_event_run_idx;
DROP TABLE ctl.published_profile;
DROP TABLE mim_export.personal_tutor;
DROP SCHEMA mim_export CASCADE;
