package synth

import (
	"testing"

	"github.com/mimwarehouse/mim/moodle/moodletest"
)

// TestSitesLoadInSimulator: every scale's Moodle sites are states the
// simulator accepts (Moodle's own rules: unique group names per course,
// members enrolled, ...), so the demo and the benchmarks can start them.
func TestSitesLoadInSimulator(t *testing.T) {
	for _, sc := range []Scale{Small, Medium, UCL} {
		in, err := Generate(Options{Scale: sc, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range in.Sites {
			if _, err := moodletest.New(*st.State); err != nil {
				t.Errorf("%v %s: %v", sc, st.Name, err)
			}
		}
	}
}
