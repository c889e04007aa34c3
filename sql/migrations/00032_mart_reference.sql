-- What the marts read besides staging: which SIS population each MIM role
-- brings into a mapped course (ref.mim_role_source, the university's to
-- edit), the parts of the configuration file the marts must agree with
-- (ctl.config_site, ctl.config_ims_role), and the personal tutors' role.
--
-- ctl.config_* are a copy of the configuration, not a second place to set
-- it: every transform rewrites them inside its own transaction, before the
-- intermediate models (the hook of internal/martconfig), from
-- moodle[].group_prefix and exports.ims_roles. The seeded rows are the
-- configuration's defaults, so a warehouse transformed without a
-- configuration (a test) computes what a default configuration would.

-- +goose Up
CREATE TABLE ref.mim_role_source (
    role        text NOT NULL,   -- a MIM role, as in ctl.course_mapping.roles and exports.ims_roles
    source      text NOT NULL CHECK (source IN ('registered_students', 'module_leaders', 'group_tutors')),
    description text NOT NULL DEFAULT '',
    PRIMARY KEY (role, source)
);
COMMENT ON TABLE ref.mim_role_source IS
    'Which SIS population a role listed in a course mapping enrols: registered_students (module registrations, or the programme/route/department/faculty), module_leaders (MOD_LEADER_UPI of a mapped occurrence''s module instance), group_tutors (CMIS tutors of a mapped occurrence''s groups). A role without a row enrols nobody (mart.dq_mapping_role lists it).';
INSERT INTO ref.mim_role_source (role, source, description) VALUES
 ('student', 'registered_students', 'students the mapping admits: registrations on mapped occurrences at or above the mapping''s minimum status, or the programme, route, department or faculty'),
 ('editingteacher', 'module_leaders', 'the module leader (MOD_LEADER_UPI) of each mapped occurrence''s module instance'),
 ('teacher', 'group_tutors', 'the CMIS tutors of the teaching groups of each mapped occurrence')
ON CONFLICT DO NOTHING;

CREATE TABLE ctl.config_site (
    instance     text PRIMARY KEY,  -- moodle[].name
    group_prefix text NOT NULL CHECK (group_prefix <> '' AND group_prefix = btrim(group_prefix)),
    written_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ctl.config_site IS
    'Copy of each configured Moodle site''s options the marts need, rewritten by every transform from the configuration. A site without a row uses the defaults (group_prefix mim:).';

CREATE TABLE ctl.config_ims_role (
    role       text PRIMARY KEY,   -- a MIM role (exports.ims_roles key)
    roletype   text NOT NULL CHECK (roletype ~ '^0[1-8]$'),
    written_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ctl.config_ims_role IS
    'Copy of exports.ims_roles (MIM role -> IMS roletype), rewritten by every transform from the configuration.';
INSERT INTO ctl.config_ims_role (role, roletype) VALUES ('student', '01'), ('editingteacher', '02'), ('teacher', '08');

INSERT INTO ctl.settings (key, value, value_type, description) VALUES
 ('tutor_role', 'personal_tutor', 'text',
  'Moodle role shortname of personal tutors in mart.exp_personal_tutor (the tutor table enrol_dbuserrel reads); the role must exist on every site fed.')
ON CONFLICT (key) DO NOTHING;

-- +goose Down
DELETE FROM ctl.settings_history WHERE key = 'tutor_role';
DELETE FROM ctl.settings WHERE key = 'tutor_role';
DROP TABLE ctl.config_ims_role;
DROP TABLE ctl.config_site;
DROP TABLE ref.mim_role_source;
