-- core_webservice_get_site_info of each site: what the site says it is.
-- The extractor also records it in ctl.moodle_site; this is the warehouse copy.
-- description: Moodle site identity per instance (raw moodle/site_info).
-- checks: unique(instance), not_null(instance)
SELECT
    r.instance,
    ref.to_text(r.payload ->> 'siteurl')   AS siteurl,
    ref.to_text(r.payload ->> 'sitename')  AS sitename,
    ref.to_text(r.payload ->> 'release')   AS release,
    ref.to_text(r.payload ->> 'version')   AS version,
    ref.to_int(r.payload ->> 'siteid')     AS site_course_id,
    ref.to_text(r.payload ->> 'username')  AS ws_username,
    ARRAY(SELECT f ->> 'name'
          FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.payload -> 'functions') = 'array'
                                         THEN r.payload -> 'functions' ELSE '[]' END) f
          ORDER BY 1) AS functions
FROM raw.record r
WHERE r.source = 'moodle' AND r.entity = 'site_info' AND r.deleted_run IS NULL
