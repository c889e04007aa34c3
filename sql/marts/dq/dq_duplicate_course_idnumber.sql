-- Courses of a site sharing one idnumber: IMS Enterprise enrols into
-- whichever it finds, so MIM feeds none of them (ambiguous_course in
-- mart.enrolment_drift).
-- description: course idnumbers held by several courses of a site.
-- depends: int.moodle_course_idnumber
-- checks: unique(instance, idnumber), not_null(instance, idnumber, courses)
SELECT instance, idnumber, courses, course_ids
FROM int.moodle_course_idnumber
WHERE courses > 1
