package moodle_test

import (
	"context"
	"testing"

	"github.com/mimwarehouse/mim/moodle"
	"github.com/mimwarehouse/mim/moodle/moodletest"
	"github.com/mimwarehouse/mim/moodle/moodletest/recorded"
)

// The site's real max_input_vars is found with reads only, in a handful of
// requests, whatever the client is configured with; a role token sees its
// own details, which is all the measure needs.
func TestMeasureInputVars(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		limit, upTo, want int
		atLeast           bool
	}{
		{40, 5000, 40, false},
		{1000, 5000, 1000, false},
		{1000, 600, 599, true},
	} {
		site := moodletest.NewServer(t, recorded.Site2(), moodletest.WithMaxInputVars(tc.limit))
		site.AddToken(moodletest.Token{Token: "mimws-token-0123456789", UserID: recorded.Site2WSUser, Capabilities: moodletest.WebServiceRole()})
		c := newClient(t, site, "mimws-token-0123456789", moodle.WithMaxInputVars(900))
		if _, err := c.MeasureInputVars(ctx, tc.upTo); err == nil {
			t.Fatal("measured without knowing who the web-service user is")
		}
		if _, err := c.SiteInfo(ctx); err != nil {
			t.Fatal(err)
		}
		m, err := c.MeasureInputVars(ctx, tc.upTo)
		if err != nil || m.Limit != tc.want || m.AtLeast != tc.atLeast || m.Requests > 16 {
			t.Errorf("max_input_vars %d, up to %d: %+v, %v; want %d (at least: %v)", tc.limit, tc.upTo, m, err, tc.want, tc.atLeast)
		}
	}
}
