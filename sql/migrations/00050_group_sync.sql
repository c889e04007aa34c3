-- Group sync (export/groupsync): what every `mim groups apply` did to each
-- Moodle site. One row per run and site, written before the first write
-- (in the transaction that spends group_delete_override, when one is
-- needed), and one row per item sent to Moodle with Moodle's answer.

-- +goose Up
CREATE TABLE ctl.group_sync_apply (
    run_id          bigint      NOT NULL REFERENCES ctl.run ON DELETE CASCADE,
    instance        text        NOT NULL,           -- Moodle site name
    course_filter   bigint,                         -- --course, NULL for every group-sync course
    status          text        NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'refused')),
    budget_decision text        CHECK (budget_decision IN ('passed', 'overridden', 'refused')), -- NULL: nothing to delete
    planned         jsonb       NOT NULL DEFAULT '{}', -- writes planned, by action
    applied         jsonb       NOT NULL DEFAULT '{}', -- writes by action and outcome
    waiting         bigint      NOT NULL DEFAULT 0,    -- members not enrolled in the course yet
    conflicts       bigint      NOT NULL DEFAULT 0,    -- desired groups/groupings whose name a teacher's object holds
    unreadable      bigint      NOT NULL DEFAULT 0,    -- courses whose state could not be read (left alone)
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    error           text,
    PRIMARY KEY (run_id, instance)
);

CREATE TABLE ctl.group_sync_action (
    action_id       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id          bigint      NOT NULL,
    instance        text        NOT NULL,
    courseid        bigint      NOT NULL CHECK (courseid > 0),
    course_idnumber text        NOT NULL DEFAULT '',
    action          text        NOT NULL CHECK (action IN ('create_group', 'create_grouping', 'assign',
                    'add_member', 'remove_member', 'unassign', 'delete_grouping', 'delete_group')),
    idnumber        text        NOT NULL DEFAULT '', -- the group's idnumber (the grouping's for grouping actions)
    name            text        NOT NULL DEFAULT '',
    -- Moodle ids: an id of 0 is never a Moodle object, so it can never be stored.
    group_id        bigint      CHECK (group_id > 0),
    grouping_id     bigint      CHECK (grouping_id > 0),
    grouping_idnumber text      NOT NULL DEFAULT '',
    userid          bigint      CHECK (userid > 0),
    user_idnumber   text        NOT NULL DEFAULT '',
    outcome         text        NOT NULL CHECK (outcome IN ('applied', 'failed', 'not_attempted')),
    error           text,                           -- Moodle's error, or why the item was not sent
    answer          jsonb,                          -- Moodle's answer for a created object
    at              timestamptz NOT NULL DEFAULT now(),
    CHECK ((outcome = 'applied') = (error IS NULL)),
    FOREIGN KEY (run_id, instance) REFERENCES ctl.group_sync_apply ON DELETE CASCADE
);
CREATE INDEX group_sync_action_run_idx ON ctl.group_sync_action (run_id, instance);
CREATE INDEX group_sync_action_course_idx ON ctl.group_sync_action (instance, courseid, action_id DESC);

-- +goose Down
DROP TABLE ctl.group_sync_action;
DROP TABLE ctl.group_sync_apply;
