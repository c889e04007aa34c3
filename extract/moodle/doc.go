// Package moodle extracts one Moodle site into raw records
// (docs/contracts.md §1): site info, categories, courses, users,
// enrolments with their suspension, roles and groups, groups, groupings,
// profile fields, and, where enabled, grades and completion.
//
// Source reads them through the site's web services: per-course reads run
// side by side within the client's concurrency, stream into the entity
// writers, and make each course its own scope, so a course whose read fails
// keeps its rows and a bad night never looks like a mass unenrolment.
// DBSource (kind moodle-db) reads the same records from the site's database,
// usually a replica, in one read-only snapshot of a handful of queries, and
// refuses a replica that has fallen behind.
package moodle
