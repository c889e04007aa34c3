package guard

import (
	"strings"
	"testing"
)

func TestThresholdIsTheIncumbentsRule(t *testing.T) {
	for _, tc := range []struct {
		prev, cur int64
		limit     int
		breach    bool
	}{
		{100, 75, 75, false}, // exactly the threshold keeps enough
		{100, 74, 75, true},
		{4, 3, 75, false},
		{3, 2, 75, true},   // 66.7%
		{0, 0, 75, false},  // nothing before: nothing to fall from
		{0, 10, 75, false}, // growth
		{10, 0, 1, true},
		{10, 0, 0, false}, // threshold 0 never refuses
		{10, 9, 100, true},
	} {
		m := Measure{Subject: "active_memberships", Previous: tc.prev, Current: tc.cur}
		if got := m.Breaches(tc.limit); got != tc.breach {
			t.Errorf("%d of %d at %d%%: breach %v, want %v", tc.cur, tc.prev, tc.limit, got, tc.breach)
		}
	}
}

func TestDecide(t *testing.T) {
	c := Check{Guard: Threshold, Instance: "main", Limit: 75, Measures: []Measure{
		{Subject: "active_students", Previous: 100, Current: 90},
		{Subject: "active_memberships", Previous: 1000, Current: 700},
	}}
	if d := c.Decide(false); d != Refused {
		t.Errorf("either measure below the limit refuses: %s", d)
	}
	if d := c.Decide(true); d != Overridden {
		t.Errorf("the override lets it through: %s", d)
	}
	if b := c.Breaches(); len(b) != 1 || b[0].Subject != "active_memberships" {
		t.Errorf("breaches %v", b)
	}
	e := CheckEvent(7, c, Refused, "ims")
	if e.Subject != "active_memberships" || *e.Previous != 1000 || *e.Current != 700 || *e.Percent != 70 || *e.Limit != 75 {
		t.Errorf("the event carries the lowest measure: %+v", e)
	}
	err := Refusal(c, "ims")
	if err.ExitCode() != 3 || !strings.Contains(err.Error(), "active_memberships 700 of 1000 (70.0%)") {
		t.Errorf("refusal: %v", err)
	}
	c.Measures[1].Current = 800
	if d := c.Decide(false); d != Passed {
		t.Errorf("within the limit: %s", d)
	}
}

func TestHoldCourses(t *testing.T) {
	held := Hold([]CourseLoss{
		{Course: "A", Students: 10, Drops: 5}, // 50%: not more than 50
		{Course: "B", Students: 10, Drops: 6},
		{Course: "C", Students: 0, Drops: 0},
		{Course: "D", Students: 1, Drops: 1},
	}, 50)
	if len(held) != 2 || held[0].Course != "B" || held[1].Course != "D" {
		t.Errorf("held %v", held)
	}
}
