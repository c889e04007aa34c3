// Package recorded holds simulator States that mirror the two real Moodle
// 4.5 sites the recordings in ../testdata were made on, so tests can
// compare the simulator's answers with Moodle's.
//
// State is the first site (testdata/samples): its users (all 413, from a
// get_users answer), the course MOD1234 (id 14) with its enrolments,
// groups, groupings, grade items and completion, and the other courses the
// samples name; the samples were read with the administrator's token.
//
// Site2 is the second site (testdata/site2): a synthetic university's main
// site after two IMS nights, profile uploads and group syncs. Its 340 users
// come whole from a get_users answer; its courses, categories, enrolments,
// groups and grade items are those the recordings name, with just enough
// else (enrolments whose only trace is a count, categories whose only
// trace is an order) to reproduce them. Its recordings were read by a
// web-service user (id 3, mimws) holding a system role, not the
// administrator. Nothing here is used outside tests.
package recorded

import (
	_ "embed"
	"encoding/json"
	"time"

	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// SiteURL is the siteurl the samples were recorded at; a simulator
// configured with it produces the same links. Both sites had it.
const SiteURL = "http://127.0.0.1:8085"

// Student is a student of course 14 (and not of course 16), whose token
// produces the samples' capability and context errors.
const Student int64 = 108

// Site2WSUser is the second site's web-service user (mimws), who holds the
// role moodletest.WebServiceRole describes.
const Site2WSUser int64 = 3

// Site2Time is when the second site was recorded: which enrolments are
// active depends on it.
var Site2Time = time.Unix(1796646500, 0)

//go:embed state.json
var stateJSON []byte

//go:embed site2.json
var site2JSON []byte

// State returns a fresh copy of the first recorded site's content.
func State() moodletest.State { return decode("state.json", stateJSON) }

// Site2 returns a fresh copy of the second recorded site's content.
func Site2() moodletest.State { return decode("site2.json", site2JSON) }

func decode(name string, b []byte) moodletest.State {
	var st moodletest.State
	if err := json.Unmarshal(b, &st); err != nil {
		panic("recorded: " + name + ": " + err.Error()) // embedded data: a programming error
	}
	return st
}
