package moodle_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	moodlex "github.com/mimwarehouse/mim/extract/moodle"
	"github.com/mimwarehouse/mim/moodle"
	"github.com/mimwarehouse/mim/moodle/moodletest"
	"github.com/mimwarehouse/mim/moodle/moodletest/recorded"
)

// Defect 2 of the real-Moodle comparison: a web-service role without the
// capabilities MIM needs makes a site look empty, and the check said ok.
// CheckAccess proves what the token sees and names what its role lacks.
func TestCheckAccessNamesTheMissingCapability(t *testing.T) {
	ctx := context.Background()
	hint := moodlex.AccessHint{UserIDs: []int64{2, 3, 14, 109, 133, 154}, CourseID: 21, Enrolled: 5, GroupMembers: 3}
	site := &moodlex.Site{Name: "main", Entities: append(slices.Clone(moodlex.DefaultEntityNames), "categories")}
	for _, tc := range []struct {
		remove []string
		hint   moodlex.AccessHint
		what   string // the finding that must fail; "" for none
		cap    string
	}{
		{nil, hint, "", ""},
		{nil, moodlex.AccessHint{}, "", ""},
		{[]string{moodletest.CapViewAllDetails}, hint, "users", "moodle/user:viewalldetails"},
		{[]string{moodletest.CapViewUserIdentity}, hint, "users", "moodle/site:viewuseridentity"},
		{[]string{moodletest.CapViewFullNames}, hint, "users", "moodle/site:viewfullnames"},
		{[]string{moodletest.CapViewDetails}, hint, "users", "moodle/user:viewdetails"},
		{[]string{moodletest.CapCourseView}, hint, "enrolments", "moodle/course:view"},
		{[]string{moodletest.CapViewParticipants, moodletest.CapEnrolReview}, hint, "enrolments", "moodle/course:viewparticipants"},
		{[]string{moodletest.CapEnrolReview}, hint, "enrolments", "moodle/course:enrolreview"},
		{[]string{moodletest.CapAccessAllGroups}, hint, "enrolments", "moodle/site:accessallgroups"},
		{[]string{moodletest.CapManageGroups}, hint, "groups", "moodle/course:managegroups"},
		{[]string{moodletest.CapManageCategory}, hint, "categories", "moodle/category:manage"},
	} {
		sim := moodletest.NewServer(t, recorded.Site2())
		token := "mimws-0123456789abcdef-" + strings.Join(tc.remove, "+")
		sim.AddToken(moodletest.Token{Token: token, UserID: recorded.Site2WSUser,
			Capabilities: moodletest.Without(moodletest.WebServiceRole(), tc.remove...)})
		c, err := moodle.New("main", sim.URL(), token, moodle.WithRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.SiteInfo(ctx); err != nil {
			t.Fatal(err)
		}
		found := moodlex.CheckAccess(ctx, c, site, tc.hint)
		if len(found) < 4 {
			t.Errorf("without %v: only %d findings: %+v", tc.remove, len(found), found)
		}
		for _, a := range found {
			switch {
			case a.What == tc.what && (a.OK || !slices.Contains(a.Missing, tc.cap) || !strings.Contains(a.Detail, tc.cap)):
				t.Errorf("without %v: %s: %+v, want it to name %s", tc.remove, a.What, a, tc.cap)
			case a.What != tc.what && !a.OK && !slices.Contains(a.Missing, tc.cap):
				// The same capability may hide more than one thing.
				t.Errorf("without %v: %s fails too: %s", tc.remove, a.What, a.Detail)
			}
		}
	}
}
