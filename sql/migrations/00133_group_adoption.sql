-- `mim groups adopt`: a teacher's group (or grouping) holding the name of a
-- CMIS group MIM wants, given MIM's idnumber so MIM owns it from then on
-- (group sync then adds and removes its members like any MIM group, within
-- the budget). One row per object adopted, with who, why and what it was.

-- +goose Up
CREATE TABLE ctl.group_adoption (
    adoption_id     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id          bigint      NOT NULL REFERENCES ctl.run,
    instance        text        NOT NULL,
    course_id       bigint      NOT NULL,
    course_idnumber text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('group', 'grouping')),
    moodle_id       bigint      NOT NULL,
    name            text        NOT NULL,
    old_idnumber    text        NOT NULL,  -- what it had ('' for a teacher's group)
    idnumber        text        NOT NULL,  -- MIM's, now the object's
    members_before  integer,               -- the group's members when adopted
    status          text        NOT NULL CHECK (status IN ('adopted', 'failed')),
    error           text,
    by              text        NOT NULL,
    reason          text        NOT NULL,
    adopted_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX group_adoption_course_idx ON ctl.group_adoption (instance, course_id);

-- +goose Down
DROP TABLE ctl.group_adoption;
