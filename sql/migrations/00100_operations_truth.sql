-- Operations that tell the truth whoever ran the work:
--   ctl.moodle_request   the Moodle web-service calls each run made, so a
--                        `mim serve` can show the calls of a cron'd `mim run`
--                        (mim_moodle_requests_total, mim_moodle_request_seconds);
--   ctl.schedule_pause   `mim pause` / `mim resume`: while a pause is open,
--                        `mim serve` runs no scheduled job (each due time is
--                        recorded as held in ctl.schedule_event);
--   ctl.mart_count       what the marts said each night (drift per site and
--                        kind, data-quality findings), for charts over time;
--                        the transform writes it in its own transaction.

-- +goose Up
CREATE TABLE ctl.moodle_request (
    run_id    bigint  NOT NULL REFERENCES ctl.run ON DELETE CASCADE,
    site      text    NOT NULL,
    function  text    NOT NULL,
    outcome   text    NOT NULL,                      -- ok, moodle_error, transient, throttled, timeout, ...
    requests  bigint  NOT NULL,
    seconds   float8  NOT NULL,                      -- the calls' total time
    le        float8[] NOT NULL,                     -- histogram upper bounds (seconds)
    buckets   bigint[] NOT NULL,                     -- cumulative count of calls at or under each bound
    CHECK (cardinality(le) = cardinality(buckets)),
    PRIMARY KEY (run_id, site, function, outcome)
);

CREATE TABLE ctl.schedule_pause (
    pause_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    paused_at  timestamptz NOT NULL DEFAULT now(),
    paused_by  text        NOT NULL,
    reason     text        NOT NULL DEFAULT '',
    resumed_at timestamptz,
    resumed_by text,
    CHECK ((resumed_at IS NULL) = (resumed_by IS NULL))
);
-- At most one pause is open.
CREATE UNIQUE INDEX schedule_pause_open_idx ON ctl.schedule_pause ((true)) WHERE resumed_at IS NULL;

ALTER TABLE ctl.schedule_event DROP CONSTRAINT schedule_event_kind_check;
ALTER TABLE ctl.schedule_event ADD CONSTRAINT schedule_event_kind_check
    CHECK (kind IN ('started', 'finished', 'skipped', 'missed', 'held'));

CREATE TABLE ctl.mart_count (
    run_id     bigint      NOT NULL REFERENCES ctl.run ON DELETE CASCADE,
    relation   text        NOT NULL,                 -- mart.enrolment_drift, mart.dq_duplicate_idnumber, ...
    instance   text        NOT NULL DEFAULT '',      -- the Moodle site, '' when the mart has none
    kind       text        NOT NULL DEFAULT '',      -- enrolment_drift: missing, extra, ...
    rows       bigint      NOT NULL,
    counted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, relation, instance, kind)
);
CREATE INDEX mart_count_relation_idx ON ctl.mart_count (relation, counted_at);

-- +goose Down
DROP TABLE ctl.mart_count;
DELETE FROM ctl.schedule_event WHERE kind = 'held';
ALTER TABLE ctl.schedule_event DROP CONSTRAINT schedule_event_kind_check;
ALTER TABLE ctl.schedule_event ADD CONSTRAINT schedule_event_kind_check
    CHECK (kind IN ('started', 'finished', 'skipped', 'missed'));
DROP TABLE ctl.schedule_pause;
DROP TABLE ctl.moodle_request;
