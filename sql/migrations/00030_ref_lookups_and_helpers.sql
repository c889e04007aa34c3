-- Reference data the transforms read, and the helper functions staging
-- models use to type raw JSON. Schema `ref` belongs to migrations (tables,
-- functions); its rows are the university's to change: the seeded values are
-- UCL's status codes (docs/contracts.md §2) and a later migration must never
-- overwrite an edited row (seed with ON CONFLICT DO NOTHING).

-- +goose Up
CREATE SCHEMA IF NOT EXISTS ref;

-- SITS enrolment status (SCE_STAC, the student view's enrolment_status):
-- enrol = true keeps or creates the Moodle enrolment. Institution-defined,
-- so a table and not a CASE; a code missing here does not enrol.
CREATE TABLE ref.sits_enrolment_status (
    code        text    PRIMARY KEY,
    description text    NOT NULL,
    enrol       boolean NOT NULL
);
INSERT INTO ref.sits_enrolment_status (code, description, enrol) VALUES
 ('E',   'enrolled', true),
 ('ED',  'enrolled, in debt', true),
 ('ES',  'enrolled with sanctions', true),
 ('ET',  'time-limited enrolment pending payment', true),
 ('EQ',  'enrolled pending eligibility check', true),
 ('PE',  'pre-enrolment completed', true),
 ('XE',  'expected to enrol', true),
 ('I',   'temporary leaver, not in attendance', true),
 ('CI',  'closed interruption record', true),
 ('IR',  'interrupting, resitting', true),
 ('IRF', 'interrupting, resitting final year', true),
 ('LRF', 'left, resitting finalist', true),
 ('CE',  'closed enrolment record', false),
 ('ID',  'not in attendance, in debt', false),
 ('IS',  'suspended for unpaid fees', false),
 ('L',   'permanent leaver', false),
 ('LE',  'permanent leaver, was enrolled', false),
 ('XC',  'cannot enrol, outstanding entry conditions', false),
 ('XD',  'in debt, cannot enrol', false),
 ('XF',  'failed to re-enrol (continuing)', false),
 ('XN',  'did not arrive (fresher)', false),
 ('XQ',  'UG UCAS fresher, refer to faculty', false),
 ('XU',  'not enrolled, progress uncertain', false);

-- SITS module registration status (student_enrl.reg_status). A mapping
-- enrols a registration whose level is at least the level of the mapping's
-- min_reg_status (default APP); level 0 never enrols.
CREATE TABLE ref.sits_registration_status (
    code        text     PRIMARY KEY,
    description text     NOT NULL,
    level       smallint NOT NULL CHECK (level >= 0),
    approved    boolean  NOT NULL,  -- goes into the "approved modules" profile field (else "pre-approval" when level > 0)
    UNIQUE (level)
);
INSERT INTO ref.sits_registration_status (code, description, level, approved) VALUES
 ('CON', 'confirmed', 3, true),
 ('APP', 'approved', 2, true),
 ('NEW', 'selected, awaiting approval', 1, false),
 ('REJ', 'rejected', 0, false);

-- SITS course join status (the student view's course_join_status): only an
-- open join enrols. Only 'O' is documented; others do not enrol.
CREATE TABLE ref.sits_course_join_status (
    code        text    PRIMARY KEY,
    description text    NOT NULL,
    open        boolean NOT NULL
);
INSERT INTO ref.sits_course_join_status (code, description, open) VALUES
 ('O', 'open', true),
 ('C', 'closed', false);

-- Helpers that read one JSON scalar, taken as text with ->> (numbers,
-- booleans and strings all come out as text; JSON null as NULL), leniently:
-- a value of the wrong shape becomes NULL instead of failing the night, and
-- the models' not_null checks then report the row. Single-expression SQL
-- functions over text, so PostgreSQL inlines them (measured: ->> with these
-- is about 2.4 times faster than extracting jsonb with -> first).

-- Text, trimmed; '' becomes NULL.
CREATE FUNCTION ref.to_text(v text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN NULLIF(btrim(v), '');

-- A whole number (a JSON number or a string of digits).
CREATE FUNCTION ref.to_int(v text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN btrim(v) ~ '^[-+]?[0-9]{1,18}$' THEN btrim(v)::bigint END;

-- A number (a JSON number or a numeric string).
CREATE FUNCTION ref.to_num(v text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN btrim(v) ~ '^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$' THEN btrim(v)::numeric END;

-- true/false, 1/0, "Y"/"N", "yes"/"no" (Moodle sends several of these).
CREATE FUNCTION ref.to_bool(v text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE lower(btrim(v))
    WHEN 'true' THEN true WHEN '1' THEN true WHEN 'y' THEN true WHEN 'yes' THEN true
    WHEN 'false' THEN false WHEN '0' THEN false WHEN 'n' THEN false WHEN 'no' THEN false END;

-- A Unix time from Moodle; 0 (Moodle's "never") becomes NULL.
CREATE FUNCTION ref.to_time(v text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN btrim(v) ~ '^[0-9]{1,12}$' THEN
    CASE WHEN btrim(v)::bigint > 0 THEN to_timestamp(btrim(v)::bigint) END END;

-- A SITS date: "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ" (the date part).
CREATE FUNCTION ref.to_date(v text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN v ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}($|T)'
            THEN make_date(substr(v, 1, 4)::int, substr(v, 6, 2)::int, substr(v, 9, 2)::int) END;

-- The numeric start year of an academic year code, as institutions write
-- them: '2025' (UCL) -> 2025; '2025/6' (Bath),
-- '2023/24' (Solent) -> the first year, if the second part is the year
-- after it; '18/19' (Warwick) -> 2018 (two-digit years below 70 are 20xx).
-- Anything else -> NULL.
CREATE FUNCTION ref.ayr_start(code text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN btrim(code) ~ '^[0-9]{4}$' THEN btrim(code)::int
    WHEN btrim(code) ~ '^[0-9]{4}/[0-9]{1,2}$' THEN
        CASE WHEN (substr(btrim(code), 1, 4)::int + 1) % (10 ^ length(split_part(btrim(code), '/', 2)))::int
                  = split_part(btrim(code), '/', 2)::int
             THEN substr(btrim(code), 1, 4)::int END
    WHEN btrim(code) ~ '^[0-9]{2}/[0-9]{2}$' THEN
        CASE WHEN (substr(btrim(code), 1, 2)::int + 1) % 100 = substr(btrim(code), 4, 2)::int
             THEN CASE WHEN substr(btrim(code), 1, 2)::int < 70 THEN 2000 ELSE 1900 END + substr(btrim(code), 1, 2)::int END
    END;

-- +goose Down
DROP FUNCTION ref.ayr_start(text);
DROP FUNCTION ref.to_date(text);
DROP FUNCTION ref.to_time(text);
DROP FUNCTION ref.to_bool(text);
DROP FUNCTION ref.to_num(text);
DROP FUNCTION ref.to_int(text);
DROP FUNCTION ref.to_text(text);
DROP TABLE ref.sits_course_join_status;
DROP TABLE ref.sits_registration_status;
DROP TABLE ref.sits_enrolment_status;
DROP SCHEMA ref;
