-- Published is not applied (export/feeds, pending.go). A change MIM sends in
-- a file (an IMS membership, a profile value) is pending until an extract of
-- that site, newer than the file, shows it applied; a later change of the
-- same row replaces it. Every file carries every pending change again, so a
-- file replaced before Moodle read it, or rejected, loses nothing.

-- +goose Up
CREATE TABLE ctl.pending_membership (
    instance         text        NOT NULL,
    course_idnumber  text        NOT NULL,
    user_idnumber    text        NOT NULL,
    roletype         text        NOT NULL,
    kind             text        NOT NULL CHECK (kind IN ('add', 'change', 'suspend', 'drop')),
    status           smallint    NOT NULL CHECK (status IN (0, 1)), -- what the file says: 1 enrol, 0 drop
    timeframe_begin  date,
    timeframe_end    date,
    cohort           text,
    first_export_id  bigint      NOT NULL REFERENCES ctl.export_run, -- the file that first carried it
    last_export_id   bigint      NOT NULL REFERENCES ctl.export_run, -- the last file that carried it
    first_sent       timestamptz NOT NULL DEFAULT now(),
    last_run_id      bigint      NOT NULL,                            -- the run of that last file
    sends            integer     NOT NULL DEFAULT 1,
    -- misses counts the extracts newer than the last file that did not show
    -- it applied; checked_run is the last of them.
    misses           integer     NOT NULL DEFAULT 0,
    checked_run      bigint,
    -- was_there: Moodle already showed it when it was sent (a manual
    -- enrolment, a first file), so seeing it proves no file was read.
    was_there        boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (instance, course_idnumber, user_idnumber, roletype)
);

CREATE TABLE ctl.pending_profile (
    instance        text        NOT NULL,
    username        text        NOT NULL,
    fields          jsonb       NOT NULL,                             -- shortname -> value sent ('' clears)
    first_export_id bigint      NOT NULL REFERENCES ctl.export_run,
    last_export_id  bigint      NOT NULL REFERENCES ctl.export_run,
    first_sent      timestamptz NOT NULL DEFAULT now(),
    last_run_id     bigint      NOT NULL,
    sends           integer     NOT NULL DEFAULT 1,
    misses          integer     NOT NULL DEFAULT 0,
    checked_run     bigint,
    was_there       boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (instance, username)
);

-- What the extracts showed of each site's files: read_through is when the
-- newest change seen applied was first sent (every file since carried it,
-- so Moodle read a file at least that new), for telling a task that does
-- not run from rows that do not take.
CREATE TABLE ctl.feed_observed (
    instance       text        NOT NULL,
    feed           text        NOT NULL CHECK (feed IN ('ims', 'profile_csv')),
    read_through   timestamptz,
    last_confirmed timestamptz,
    confirmed      bigint      NOT NULL DEFAULT 0,                    -- changes seen applied, in all
    PRIMARY KEY (instance, feed)
);

INSERT INTO ctl.settings (key, value, value_type, description) VALUES
 ('pending_alert_nights', '2', 'int',
  'A change sent to Moodle in a file (IMS membership, profile value) that this many extracts since have not shown applied is reported on the status page and in the run mail, with its likely cause.');

-- +goose Down
DELETE FROM ctl.settings_history WHERE key = 'pending_alert_nights';
DELETE FROM ctl.settings WHERE key = 'pending_alert_nights';
DROP TABLE ctl.feed_observed;
DROP TABLE ctl.pending_profile;
DROP TABLE ctl.pending_membership;
