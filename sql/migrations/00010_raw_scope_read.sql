-- The raw loader's record of how each scope was last read (written in the
-- same transaction as the scope's records).
--
-- An unchanged record is not rewritten on a re-run, so raw.record.seen_run is
-- the last run that wrote the row. A scope read completely in run R either
-- wrote every live key it holds or marked it deleted, so the last run that
-- saw a live record is greatest(record.seen_run, scope_read.complete_run).
-- A scope whose read keeps failing shows here with its error and how stale
-- its rows are.

-- +goose Up
CREATE TABLE raw.scope_read (
    source       text   NOT NULL,
    instance     text   NOT NULL,
    entity       text   NOT NULL,
    scope        text   NOT NULL,
    complete_run bigint,                            -- the last run that read it completely
    failed_run   bigint,                            -- the last run whose read of it failed
    error        text,                              -- why that read failed
    PRIMARY KEY (source, instance, entity, scope)
);

-- +goose Down
DROP TABLE raw.scope_read;
