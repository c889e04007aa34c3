-- The LTI 1.3 tool `mim serve` offers course staff (internal/lti): the
-- Moodle sites registered as platforms, the logins in flight between the
-- OIDC initiation and the launch, the nonces already used, the short
-- sessions a launch opens, and every change staff previewed or made. The
-- freeze that global deactivation and the rollover put on staff edits is a
-- setting, so it has its history like the others.

-- +goose Up
CREATE TABLE ctl.lti_platform (
    platform_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance        text        NOT NULL,            -- the Moodle site (moodle[].name): launches act on this site only
    issuer          text        NOT NULL,            -- the platform's iss: the site's wwwroot
    client_id       text        NOT NULL,            -- the client id the platform gave MIM
    deployment_ids  text[]      NOT NULL DEFAULT '{}',
    auth_url        text        NOT NULL,            -- OIDC authorization endpoint (mod/lti/auth.php)
    jwks_url        text        NOT NULL,            -- the platform's keys (mod/lti/certs.php)
    token_url       text        NOT NULL DEFAULT '',
    registered_at   timestamptz NOT NULL DEFAULT now(),
    registered_by   text        NOT NULL,            -- dynamic registration, or who ran mim lti register
    active          boolean     NOT NULL DEFAULT true,
    detail          jsonb       NOT NULL DEFAULT '{}', -- the platform's product and version, as it said
    UNIQUE (issuer, client_id)
);

-- One OIDC login initiation waiting for its launch (state -> nonce). Only
-- hashes are kept: the state travels through the platform, the browser
-- secret in a cookie. A launch consumes its row.
CREATE TABLE ctl.lti_login (
    state_hash   bytea       PRIMARY KEY CHECK (length(state_hash) = 32),
    browser_hash bytea       NOT NULL CHECK (length(browser_hash) = 32),
    nonce        text        NOT NULL,
    platform_id  bigint      NOT NULL REFERENCES ctl.lti_platform ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX lti_login_expires_idx ON ctl.lti_login (expires_at);

-- Nonces of accepted id_tokens, kept until the token could no longer be
-- valid: a second use is a replay.
CREATE TABLE ctl.lti_nonce (
    issuer     text        NOT NULL,
    nonce      text        NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (issuer, nonce)
);
CREATE INDEX lti_nonce_expires_idx ON ctl.lti_nonce (expires_at);

-- A session opened by one verified launch: one person, one course of one
-- site, for a short time. The session and CSRF tokens are kept as hashes.
CREATE TABLE ctl.lti_session (
    session_hash    bytea       PRIMARY KEY CHECK (length(session_hash) = 32),
    csrf_hash       bytea       NOT NULL CHECK (length(csrf_hash) = 32),
    platform_id     bigint      NOT NULL REFERENCES ctl.lti_platform ON DELETE CASCADE,
    instance        text        NOT NULL,
    deployment_id   text        NOT NULL,
    context_id      text        NOT NULL,            -- the Moodle course id
    context_label   text        NOT NULL DEFAULT '', -- shortname
    context_title   text        NOT NULL DEFAULT '', -- fullname
    course_idnumber text        NOT NULL DEFAULT '', -- lis course_section_sourcedid ('' when the course has none)
    user_sub        text        NOT NULL,            -- the Moodle user id
    user_name       text        NOT NULL DEFAULT '',
    user_login      text        NOT NULL DEFAULT '', -- the Moodle username, when the platform sends it
    user_email      text        NOT NULL DEFAULT '',
    roles           text[]      NOT NULL DEFAULT '{}',
    can_edit        boolean     NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL
);
CREATE INDEX lti_session_expires_idx ON ctl.lti_session (expires_at);

-- Every change staff previewed through the tool, and what became of it.
-- Applying names the previewed change, so what is applied is what was
-- previewed, once.
CREATE TABLE ctl.lti_change (
    change_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_hash    bytea       NOT NULL,
    instance        text        NOT NULL,
    course_idnumber text        NOT NULL,
    action          text        NOT NULL CHECK (action IN ('add', 'update', 'remove')),
    change          jsonb       NOT NULL,            -- what was asked
    preview         jsonb       NOT NULL,            -- what the next export would do, as shown
    status          text        NOT NULL DEFAULT 'previewed' CHECK (status IN ('previewed', 'applying', 'applied', 'refused')),
    note            text,
    by              text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    decided_at      timestamptz
);
CREATE INDEX lti_change_course_idx ON ctl.lti_change (instance, course_idnumber, change_id DESC);

INSERT INTO ctl.settings (key, value, value_type, description) VALUES
 ('staff_edits_frozen', 'false', 'bool',
  'Course staff cannot change mappings through the LTI tool while true. A global deactivation of the mappings and an applied rollover set it; a global activation, or setting it to false, releases it.');

-- +goose Down
DELETE FROM ctl.settings_history WHERE key = 'staff_edits_frozen';
DELETE FROM ctl.settings WHERE key = 'staff_edits_frozen';
DROP TABLE ctl.lti_change;
DROP TABLE ctl.lti_session;
DROP TABLE ctl.lti_nonce;
DROP TABLE ctl.lti_login;
DROP TABLE ctl.lti_platform;
