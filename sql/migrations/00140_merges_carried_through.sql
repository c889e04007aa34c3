-- Merges carried through to the end (issue 22). The merge list keeps the
-- account a student logs in with (the rules of exports.merge.keep, copied by
-- every transform into ctl.config_merge_keep, and each site's main
-- authentication, moodle[].main_auth, into ctl.config_site); every pair a
-- published list carried is kept in ctl.merge_sent, so that a merge Moodle
-- has done is recognised (the removed account suspended, its enrolments
-- gone or suspended, in an extract newer than the list) and never proposed
-- again; and the student code then moves to the kept account through the
-- profile CSV, budgeted like every removal (idnumber_carry_budget).

-- +goose Up
ALTER TABLE ctl.config_site ADD COLUMN main_auth text
    CHECK (main_auth IS NULL OR main_auth ~ '^[a-z0-9_]+$');
COMMENT ON COLUMN ctl.config_site.main_auth IS
    'moodle[].main_auth: the authentication students log in with on the site (ldap, saml2, ...); NULL: the one most accounts carrying an idnumber have.';

CREATE TABLE ctl.config_merge_keep (
    position   smallint PRIMARY KEY CHECK (position > 0),
    rule       text NOT NULL UNIQUE
               CHECK (rule IN ('sis_username', 'main_auth', 'idnumber', 'active', 'last_access', 'newest', 'oldest')),
    written_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ctl.config_merge_keep IS
    'Copy of exports.merge.keep, rewritten by every transform: the rules, in order, that choose the account a student''s other accounts are merged into (mart.exp_merge_candidates).';
INSERT INTO ctl.config_merge_keep (position, rule) VALUES
    (1, 'sis_username'), (2, 'main_auth'), (3, 'idnumber'), (4, 'active'), (5, 'last_access'), (6, 'newest');

-- Every pair of every merge list MIM published, as it was sent.
CREATE TABLE ctl.merge_sent (
    instance      text        NOT NULL,
    from_userid   bigint      NOT NULL,
    to_userid     bigint      NOT NULL,
    from_username text        NOT NULL,
    to_username   text        NOT NULL,
    student_code  text        NOT NULL,   -- to_idnumber of the file: the SIS identity the kept account is to carry
    reason        text        NOT NULL,   -- why the two accounts are one person
    keep_reason   text        NOT NULL,   -- why this account is the one kept
    export_id     bigint      NOT NULL REFERENCES ctl.export_run,
    run_id        bigint      NOT NULL,
    sent_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance, from_userid, export_id)
);
CREATE INDEX merge_sent_from_idx ON ctl.merge_sent (instance, from_userid, run_id);

INSERT INTO ctl.settings (key, value, value_type, description) VALUES
 ('idnumber_carry_budget', '50', 'int',
  'Most student codes one profile CSV may move on a site after observed merges (each clears the idnumber of a merged-away account and gives it to the kept one); more are held back unless idnumber_carry_override is set.'),
 ('idnumber_carry_override', 'false', 'override',
  'One-shot: let the next profile CSV move student codes beyond idnumber_carry_budget; lapses after the run that uses it (or after override_hours).')
ON CONFLICT (key) DO NOTHING;

-- +goose Down
DELETE FROM ctl.override_arm WHERE key = 'idnumber_carry_override';
DELETE FROM ctl.settings_history WHERE key IN ('idnumber_carry_budget', 'idnumber_carry_override');
DELETE FROM ctl.settings WHERE key IN ('idnumber_carry_budget', 'idnumber_carry_override');
DROP TABLE ctl.merge_sent;
DROP TABLE ctl.config_merge_keep;
ALTER TABLE ctl.config_site DROP COLUMN main_auth;
