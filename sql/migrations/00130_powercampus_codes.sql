-- PowerCampus enrolment statuses (ACADEMIC.ENROLL_SEPARATION) in the
-- table the marts read, so a PowerCampus source (sources.sits.system:
-- powercampus) enrols as SITS does. The university edits these rows like
-- the SITS ones. (Registration statuses need no rows: the PowerCampus
-- SELECT writes ADD_DROP_WAIT A, W, D as CON, NEW, REJ.)

-- +goose Up
INSERT INTO ref.sits_enrolment_status (code, description, enrol) VALUES
 ('ENRL', 'PowerCampus: enrolled', true),
 ('WDRN', 'PowerCampus: withdrawn', false),
 ('GRAD', 'PowerCampus: graduated', false)
ON CONFLICT (code) DO NOTHING;

-- +goose Down
DELETE FROM ref.sits_enrolment_status WHERE code IN ('ENRL', 'WDRN', 'GRAD');
