// Package moodle extracts one Moodle site into raw records through its web
// services (docs/contracts.md §1): site info, categories, courses, users,
// enrolments with their suspension, roles and groups, groups, groupings,
// profile fields, and, where enabled, grades and completion.
//
// Per-course reads run side by side within the client's concurrency, stream
// into the entity writers, and make each course its own scope: a course
// whose read fails is declared failed and keeps its rows, so a bad night
// never looks like a mass unenrolment.
package moodle
