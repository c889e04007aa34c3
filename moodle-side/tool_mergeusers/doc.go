// Package toolmergeusers tests MIM's gathering for Moodle's tool_mergeusers
// (lib/mimgathering.php, installed on the Moodle host: docs/moodle-side.md):
// PHP's own linter on every PHP file, and the gathering run with PHP, outside
// Moodle (tests/harness.php), on a merge list MIM's writer wrote and on the
// cases of tests/cases.json, which the simulator's twin
// (moodletest.Site.RunMergeList) is tested on too. It holds no Go code.
package toolmergeusers
