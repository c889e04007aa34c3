-- The warehouse's schemas and control tables. Migrations own every table;
-- transforms own the rows of stg/int/mart and the views there.
--
-- Version ranges, so that parallel work never collides on a number:
--   00001-00009 foundation   00010-00019 raw loader      00020-00029 SITS/CMIS
--   00030-00039 transforms   00040-00049 feeds/guards    00050-00059 group sync
--   00060-00069 operations   00070-00079 performance
--   00080-00089 removal budgets and completeness          00090-00099 Moodle fidelity
--   00100-00109 operations   00110-00119 Moodle database reads  00120-00129 LTI tool
--   00130-00139 sources and feeds                          00140-00149 merges
-- A range may gain a migration after a higher one has run: goose applies
-- it out of order (warehouse.Migrate allows it), so the ranges never collide.

-- +goose Up
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS stg;
CREATE SCHEMA IF NOT EXISTS int;
CREATE SCHEMA IF NOT EXISTS mart;
CREATE SCHEMA IF NOT EXISTS ctl;

-- The run ledger: one row per command that changes something.
CREATE TABLE ctl.run (
    run_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    command      text        NOT NULL,              -- run, extract, transform, export, groups, ...
    status       text        NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'succeeded', 'failed', 'refused', 'partial', 'abandoned')),
    environment  text        NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    host         text        NOT NULL,
    pid          integer     NOT NULL,
    version      text        NOT NULL,
    args         text[]      NOT NULL DEFAULT '{}', -- the command line; never holds secrets
    exit_code    integer,
    error        text,
    CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX run_started_idx ON ctl.run (started_at DESC);
CREATE INDEX run_command_status_idx ON ctl.run (command, status, finished_at DESC);

-- One row per stage/source/entity inside a run, with its counts and timing.
CREATE TABLE ctl.run_step (
    step_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id         bigint      NOT NULL REFERENCES ctl.run ON DELETE CASCADE,
    stage          text        NOT NULL,            -- extract, load, transform, export, groups, guard, ...
    source         text        NOT NULL DEFAULT '', -- sits, cmis, moodle, or '' when not source-specific
    instance       text        NOT NULL DEFAULT '', -- Moodle site name, or the source's name
    entity         text        NOT NULL DEFAULT '', -- entity, model, feed or plan name
    status         text        NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'succeeded', 'failed', 'skipped', 'refused', 'partial')),
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    rows_in        bigint      NOT NULL DEFAULT 0,
    rows_new       bigint      NOT NULL DEFAULT 0,
    rows_changed   bigint      NOT NULL DEFAULT 0,
    rows_deleted   bigint      NOT NULL DEFAULT 0,
    rows_unchanged bigint      NOT NULL DEFAULT 0,
    errors         bigint      NOT NULL DEFAULT 0,
    detail         jsonb       NOT NULL DEFAULT '{}',
    error          text
);
CREATE INDEX run_step_run_idx ON ctl.run_step (run_id);
CREATE INDEX run_step_lookup_idx ON ctl.run_step (stage, source, instance, entity, finished_at DESC);

-- Which environment this warehouse belongs to. Written by the first
-- `mim migrate`; changed only by `mim migrate --claim ENV`. A production
-- database restored into staging still says production, and that blocks
-- every write to Moodle until someone claims it deliberately.
CREATE TABLE ctl.deployment (
    singleton    boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    environment  text        NOT NULL,
    claimed_at   timestamptz NOT NULL DEFAULT now(),
    claimed_by   text        NOT NULL
);
CREATE TABLE ctl.deployment_claim (
    claim_id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    environment          text        NOT NULL,
    previous_environment text,
    claimed_at           timestamptz NOT NULL DEFAULT now(),
    claimed_by           text        NOT NULL
);

-- Operational settings, the incumbent's names kept. Typed and validated by
-- `mim settings set`; every change recorded in settings_history.
CREATE TABLE ctl.settings (
    key         text        PRIMARY KEY,
    value       text        NOT NULL,
    value_type  text        NOT NULL CHECK (value_type IN ('int', 'percent', 'bool', 'text', 'email', 'year')),
    description text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text        NOT NULL DEFAULT 'migration'
);
CREATE TABLE ctl.settings_history (
    change_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key        text        NOT NULL REFERENCES ctl.settings,
    old_value  text,
    new_value  text        NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    changed_by text        NOT NULL,
    run_id     bigint      REFERENCES ctl.run,      -- set when a run changed it (an override reset)
    reason     text
);
INSERT INTO ctl.settings (key, value, value_type, description) VALUES
 ('threshold_percent', '75', 'percent',
  'Share (whole percent) of the last successful export''s active students and active memberships that a new export must keep; below it the export is refused.'),
 ('threshold_override', 'false', 'bool',
  'One-shot: let the next export through despite a threshold breach; reset to false in the same transaction as that publish. Policy: false unless agreed by the Service Operations Manager and the Service Owner.'),
 ('threshold_send_email', 'true', 'bool',
  'Send mail on threshold events (refusals and overrides).'),
 ('threshold_email', '', 'email',
  'Address threshold mail goes to; empty means notify.to from the configuration.'),
 ('threshold_email_subject', 'MIM threshold breached: export to Moodle refused', 'text',
  'Subject of threshold mail.'),
 ('threshold_email_message', 'The latest SITS dataset would drop active students or memberships below the threshold compared with the last successful export. Nothing was sent to Moodle. Check the source data; if the drop is expected (e.g. academic year rollover), set threshold_override to true for one run.', 'text',
  'Body of threshold mail (the figures are appended).'),
 ('min_mod_occ_year', '0', 'year',
  'Module occurrences of academic years before this are ignored (0 = no limit). Set to the new year at rollover.'),
 ('academic_year', '0', 'year',
  'The current academic year''s start year (e.g. 2025 for 2025/26); 0 = not set.'),
 ('course_drop_percent', '50', 'percent',
  'A course that would lose more than this share of its students in one export has its drops held back (a likely wrong mapping) while the rest goes out.'),
 ('group_delete_budget', '50', 'int',
  'Most groups plus groupings one group sync may delete per site; more is refused unless group_delete_override is set.'),
 ('group_delete_budget_percent', '10', 'percent',
  'Most share of the groups MIM owns on a site that one group sync may delete.'),
 ('group_delete_override', 'false', 'bool',
  'One-shot: let the next group sync delete beyond the budget; reset when used.');

-- Moodle course -> SIS entity mappings (the Portico block's job, kept here).
CREATE TABLE ctl.course_mapping (
    mapping_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance        text        NOT NULL,            -- Moodle site name
    course_idnumber text        NOT NULL,            -- Moodle course idnumber
    sis_kind        text        NOT NULL CHECK (sis_kind IN
                    ('module_occurrence', 'programme', 'route', 'department', 'faculty', 'section')),
    sis_key         text        NOT NULL,            -- occurrence BDO id or natural key, programme code, ...
    academic_year   text        NOT NULL DEFAULT '', -- '' = any
    section         text        NOT NULL DEFAULT '', -- for sis_kind section (PowerCampus-style)
    course_year     text        NOT NULL DEFAULT '', -- year-of-study filter for programme/route/department/faculty
    min_reg_status  text        NOT NULL DEFAULT 'APP' CHECK (min_reg_status IN ('CON', 'APP', 'NEW')),
    roles           text[]      NOT NULL DEFAULT '{student}',
    active          boolean     NOT NULL DEFAULT true,
    group_sync      boolean     NOT NULL DEFAULT false,
    origin          text        NOT NULL DEFAULT 'manual', -- manual, import:<file>, rule:<name>
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text        NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    updated_by      text        NOT NULL,
    UNIQUE (instance, course_idnumber, sis_kind, sis_key, academic_year, section, course_year)
);
CREATE TABLE ctl.course_mapping_event (
    event_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mapping_id bigint      REFERENCES ctl.course_mapping ON DELETE SET NULL,
    instance   text        NOT NULL,
    course_idnumber text   NOT NULL,
    action     text        NOT NULL,                 -- create, update, activate, deactivate, delete
    at         timestamptz NOT NULL DEFAULT now(),
    by         text        NOT NULL,
    detail     jsonb       NOT NULL DEFAULT '{}'
);

-- The fingerprint of each Moodle site, from core_webservice_get_site_info.
CREATE TABLE ctl.moodle_site (
    instance          text        PRIMARY KEY,
    configured_url    text        NOT NULL,
    environment       text        NOT NULL,         -- as configured
    siteurl           text,                          -- as Moodle reports it
    sitename          text,
    release           text,
    version           text,
    missing_functions text[]      NOT NULL DEFAULT '{}',
    first_seen        timestamptz NOT NULL DEFAULT now(),
    last_seen         timestamptz NOT NULL DEFAULT now(),
    last_run_id       bigint      REFERENCES ctl.run ON DELETE SET NULL
);

-- Every published (or refused, or dry-run) feed.
CREATE TABLE ctl.export_run (
    export_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id             bigint      NOT NULL REFERENCES ctl.run,
    instance           text        NOT NULL,
    feed               text        NOT NULL CHECK (feed IN ('ims', 'profile_csv', 'tutor', 'merge')),
    mode               text        NOT NULL DEFAULT 'delta' CHECK (mode IN ('delta', 'full')),
    status             text        NOT NULL CHECK (status IN ('published', 'refused', 'failed', 'dry_run', 'empty')),
    file_name          text,
    archive_path       text,
    sha256             text,
    bytes              bigint,
    active_students    bigint,
    active_memberships bigint,
    counts             jsonb       NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL DEFAULT now(),
    published_at       timestamptz
);
CREATE INDEX export_run_last_idx ON ctl.export_run (instance, feed, status, export_id DESC);

-- What the last successful export told each Moodle; deltas are computed against it.
CREATE TABLE ctl.published_membership (
    instance         text     NOT NULL,
    course_idnumber  text     NOT NULL,
    user_idnumber    text     NOT NULL,
    roletype         text     NOT NULL,             -- IMS roletype code, e.g. 01
    status           smallint NOT NULL CHECK (status IN (0, 1)),
    timeframe_begin  date,
    timeframe_end    date,
    export_id        bigint   NOT NULL REFERENCES ctl.export_run,
    PRIMARY KEY (instance, course_idnumber, user_idnumber, roletype)
);

-- Every guard decision: thresholds, per-course holds, group delete budgets, environment refusals.
CREATE TABLE ctl.guard_event (
    event_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id     bigint      REFERENCES ctl.run,
    instance   text        NOT NULL DEFAULT '',
    guard      text        NOT NULL,                -- threshold, course_drop, group_delete_budget, environment, tutor_threshold
    decision   text        NOT NULL CHECK (decision IN ('passed', 'refused', 'overridden', 'held')),
    subject    text        NOT NULL DEFAULT '',     -- what was measured: active_students, a course idnumber, ...
    previous   bigint,
    current    bigint,
    percent    numeric(7, 2),
    limit_value numeric(7, 2),
    detail     jsonb       NOT NULL DEFAULT '{}',
    notified   boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX guard_event_recent_idx ON ctl.guard_event (created_at DESC);

-- Every source record, as the source sent it, one current version per key.
CREATE TABLE raw.record (
    source      text   NOT NULL,                    -- sits, cmis, moodle
    instance    text   NOT NULL,                    -- Moodle site name, or the source's name
    entity      text   NOT NULL,
    key         text   NOT NULL,
    scope       text   NOT NULL DEFAULT '',         -- e.g. the Moodle course id an enrolment was read under
    payload     jsonb  NOT NULL,
    hash        bytea  NOT NULL CHECK (length(hash) = 32), -- SHA-256 of the canonical JSON
    first_run   bigint NOT NULL,
    changed_run bigint NOT NULL,
    seen_run    bigint NOT NULL,
    deleted_run bigint,                             -- set when a completely read scope no longer has the key
    PRIMARY KEY (source, instance, entity, key)
);
CREATE INDEX record_scope_idx ON raw.record (source, instance, entity, scope);

-- Earlier versions of changed (and deleted-then-returned) records.
CREATE TABLE raw.record_history (
    source        text   NOT NULL,
    instance      text   NOT NULL,
    entity        text   NOT NULL,
    key           text   NOT NULL,
    scope         text   NOT NULL,
    payload       jsonb  NOT NULL,
    hash          bytea  NOT NULL,
    valid_from_run bigint NOT NULL,                 -- the changed_run of that version
    valid_to_run   bigint NOT NULL,                 -- the run that replaced it
    deleted_run    bigint,
    PRIMARY KEY (source, instance, entity, key, valid_to_run)
);

-- +goose Down
DROP TABLE raw.record_history;
DROP TABLE raw.record;
DROP TABLE ctl.guard_event;
DROP TABLE ctl.published_membership;
DROP TABLE ctl.export_run;
DROP TABLE ctl.moodle_site;
DROP TABLE ctl.course_mapping_event;
DROP TABLE ctl.course_mapping;
DROP TABLE ctl.settings_history;
DROP TABLE ctl.settings;
DROP TABLE ctl.deployment_claim;
DROP TABLE ctl.deployment;
DROP TABLE ctl.run_step;
DROP TABLE ctl.run;
DROP SCHEMA mart;
DROP SCHEMA int;
DROP SCHEMA stg;
DROP SCHEMA raw;
