-- Text-based JSON helpers for the staging models, replacing the jsonb-based
-- ones of 00030: staging reads each value with ->> (text), which measured
-- about 2.4 times faster at scale "ucl" than extracting jsonb with -> first
-- (290,000 SITS registrations: 0.63 s instead of 1.5 s for the SELECT).

-- +goose Up
DROP FUNCTION ref.jdate(jsonb);
DROP FUNCTION ref.jepoch(jsonb);
DROP FUNCTION ref.jbool(jsonb);
DROP FUNCTION ref.jnum(jsonb);
DROP FUNCTION ref.jint(jsonb);
DROP FUNCTION ref.jtext(jsonb);

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

-- +goose Down
DROP FUNCTION ref.to_date(text);
DROP FUNCTION ref.to_time(text);
DROP FUNCTION ref.to_bool(text);
DROP FUNCTION ref.to_num(text);
DROP FUNCTION ref.to_int(text);
DROP FUNCTION ref.to_text(text);

-- 00030's jsonb helpers, as they were.

-- Helpers that read one JSON value leniently: a value of the wrong shape
-- becomes NULL instead of failing the night, and the models' not_null
-- checks then report the row. Written as single-expression SQL functions so
-- PostgreSQL inlines them (no per-row call cost).

-- Text, trimmed; '' and JSON null become NULL.
CREATE FUNCTION ref.jtext(v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN NULLIF(btrim(v #>> '{}'), '');

-- A whole number sent as a JSON number or a string of digits.
CREATE FUNCTION ref.jint(v jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN btrim(v #>> '{}') ~ '^[-+]?[0-9]{1,18}$' THEN btrim(v #>> '{}')::bigint END;

-- A number sent as a JSON number or a numeric string.
CREATE FUNCTION ref.jnum(v jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN btrim(v #>> '{}') ~ '^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$' THEN btrim(v #>> '{}')::numeric END;

-- true/false, 1/0, "1"/"0", "true"/"false", "Y"/"N" (Moodle sends all of these).
CREATE FUNCTION ref.jbool(v jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE lower(btrim(v #>> '{}'))
    WHEN 'true' THEN true WHEN '1' THEN true WHEN 'y' THEN true WHEN 'yes' THEN true
    WHEN 'false' THEN false WHEN '0' THEN false WHEN 'n' THEN false WHEN 'no' THEN false END;

-- A Unix time from Moodle; 0 (Moodle's "never") becomes NULL.
CREATE FUNCTION ref.jepoch(v jsonb) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN btrim(v #>> '{}') ~ '^[0-9]{1,12}$' AND btrim(v #>> '{}')::bigint > 0
            THEN to_timestamp(btrim(v #>> '{}')::bigint) END;

-- A SITS date: "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ" (the date part).
CREATE FUNCTION ref.jdate(v jsonb) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN (v #>> '{}') ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}($|T)'
            THEN make_date(substr(v #>> '{}', 1, 4)::int, substr(v #>> '{}', 6, 2)::int, substr(v #>> '{}', 9, 2)::int) END;
