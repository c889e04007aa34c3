// Package recorded holds a simulator State that mirrors the Moodle 4.5 site
// the samples in moodle/moodletest/testdata/samples were recorded from: its users
// (all 413 of them, from a get_users answer), the course MOD1234 (id 14)
// with its enrolments, groups, groupings, grade items and completion, and
// the other courses the samples name. Tests compare the simulator's
// answers with the recordings against it, and test the client on it.
// Nothing here is used outside tests.
package recorded

import (
	_ "embed"
	"encoding/json"

	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// SiteURL is the siteurl the samples were recorded at; a simulator
// configured with it produces the same links.
const SiteURL = "http://127.0.0.1:8085"

// Student is a student of course 14 (and not of course 16), whose token
// produces the samples' capability and context errors.
const Student int64 = 108

//go:embed state.json
var stateJSON []byte

// State returns a fresh copy of the recorded site's content.
func State() moodletest.State {
	var st moodletest.State
	if err := json.Unmarshal(stateJSON, &st); err != nil {
		panic("recorded: state.json: " + err.Error()) // embedded data: a programming error
	}
	return st
}
