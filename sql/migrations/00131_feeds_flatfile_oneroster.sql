-- The flat-file enrolment feed (a site's alternative to IMS, from the same
-- delta and ctl.published_membership) and the OneRoster 1.2 CSV feed, with
-- what the last OneRoster export told its consumer, so the next one can be
-- a delta: one row per OneRoster object (orgs, academicSessions, courses,
-- classes, users, roles, enrollments) by its sourcedId, with the hash of the
-- columns written.

-- +goose Up
ALTER TABLE ctl.export_run DROP CONSTRAINT export_run_feed_check;
ALTER TABLE ctl.export_run ADD CONSTRAINT export_run_feed_check
    CHECK (feed IN ('ims', 'flatfile', 'profile_csv', 'tutor', 'merge', 'oneroster'));

CREATE TABLE ctl.published_oneroster (
    instance     text        NOT NULL,
    file         text        NOT NULL CHECK (file IN ('orgs', 'academicSessions', 'courses', 'classes', 'users', 'roles', 'enrollments')),
    sourced_id   text        NOT NULL,
    hash         text        NOT NULL,           -- md5 of the row as written (status and dateLastModified left out)
    fields       text[]      NOT NULL,           -- the row, so a removal can be sent as tobedeleted
    export_id    bigint      NOT NULL REFERENCES ctl.export_run (export_id),
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance, file, sourced_id)
);

-- +goose Down
DROP TABLE ctl.published_oneroster;
DELETE FROM ctl.export_run WHERE feed IN ('flatfile', 'oneroster');
ALTER TABLE ctl.export_run DROP CONSTRAINT export_run_feed_check;
ALTER TABLE ctl.export_run ADD CONSTRAINT export_run_feed_check CHECK (feed IN ('ims', 'profile_csv', 'tutor', 'merge'));
