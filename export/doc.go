// Package export holds the feeds MIM hands back to Moodle (IMS Enterprise XML, profile-field CSV, tutor
// table, merge list, group sync) and the guards that stand in front of every one of them.
package export
