// Package e2e holds MIM's end-to-end tests of the marts: the synthetic
// institution (internal/synth) written into PostgreSQL, extracted with the
// real SITS, CMIS and Moodle extractors (the Moodle sites simulated from
// synth's states) through the raw loader, mapped, and transformed with every
// model of sql/; the marts must then reproduce what synth.Manifest says was
// planted. It has no code of its own beyond the tests.
//
// Run it with a PostgreSQL: MIM_REQUIRE_DB=1 go test ./internal/e2e. The
// benchmark of the whole pipeline at a larger scale:
//
//	MIM_REQUIRE_DB=1 MIM_E2E_SCALE=ucl go test ./internal/e2e -run '^$' -bench Pipeline -benchtime 1x
package e2e
