-- Operations: what `mim serve`'s scheduler did with each due time (so a run
-- that was skipped because another held the lock, or missed because the
-- daemon was down, is on the status page, not only in a log), and what
-- `mim catalog publish` last told CKAN about each mart.

-- +goose Up
CREATE TABLE ctl.schedule_event (
    event_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job        text        NOT NULL,                -- nightly, groups
    schedule   text        NOT NULL,                -- the cron expression
    due_at     timestamptz NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('started', 'finished', 'skipped', 'missed')),
    run_id     bigint      REFERENCES ctl.run ON DELETE SET NULL,
    status     text,                                -- the run's outcome, for finished
    note       text,                                -- why, for skipped and missed
    host       text        NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedule_event_recent_idx ON ctl.schedule_event (at DESC);
CREATE INDEX schedule_event_job_idx ON ctl.schedule_event (job, kind, due_at DESC);

CREATE TABLE ctl.catalog_dataset (
    relation      text        PRIMARY KEY,           -- mart.enrolment_drift
    dataset_name  text        NOT NULL UNIQUE,       -- the CKAN name
    package_id    text,                              -- CKAN's id, once created
    row_count     bigint      NOT NULL,
    columns       integer     NOT NULL,
    schema_sha256 text        NOT NULL,              -- of the column list: a changed schema is visible
    action        text        NOT NULL CHECK (action IN ('created', 'updated')),
    run_id        bigint      REFERENCES ctl.run ON DELETE SET NULL,
    published_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE ctl.catalog_dataset;
DROP TABLE ctl.schedule_event;
