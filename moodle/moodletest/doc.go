// Package moodletest is a Moodle 4.5 site in memory behind the REST
// web-service protocol, answering every function MIM uses the way the
// recordings in testdata/samples show Moodle does: ints and strings as
// Moodle types them, optional keys left out, null for functions that
// return nothing, XML unless JSON is asked for, exceptions with HTTP 200,
// unknown parameters rejected, one bad item rolling back a whole batch.
//
// A Site starts from a State, indexed by course and by user so that it
// holds a university (50,000 users, 300,000 enrolments) and answers fast.
// It serves tests through httptest (NewServer) and `mim demo` on a
// loopback port (Start), and can misbehave on demand (Fault, SetThrottle,
// WithMaxInputVars, WithLatency) the ways real sites and their proxies do.
package moodletest
