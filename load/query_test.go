package load_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/mimwarehouse/mim/extract"
	"github.com/mimwarehouse/mim/load"
)

// What raw holds is counted and looked up live: a record of a completed
// scope that was not read again is deleted, not live.
func TestLiveCountsAndIsLive(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.mustLoad(enrolments, courses(3, 2))
	// Course 3 emptied: its two enrolments are marked deleted.
	e.mustLoad(enrolments, pass{records: courses(2, 2).records, complete: []string{"1", "2", "3"}})
	students := extract.EntityID{Source: "sits", Instance: "sits", Entity: "student"}
	e.mustLoad(students, pass{records: []extract.Record{{Key: "S1", Payload: json.RawMessage(`{"code":"S1"}`)}}, complete: []string{""}})

	counts, err := load.LiveCounts(ctx, e.db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(counts); got != "[{moodle main 4} {sits sits 1}]" {
		t.Errorf("live counts %s, want [{moodle main 4} {sits sits 1}]", got)
	}
	for _, c := range []struct {
		id   extract.EntityID
		key  string
		want bool
	}{
		{enrolments, "1:2", true},
		{enrolments, "3:1", false}, // deleted with its course
		{enrolments, "9:9", false}, // never landed
		{students, "S1", true},
		{extract.EntityID{Source: "sits", Instance: "other", Entity: "student"}, "S1", false},
	} {
		live, err := load.IsLive(ctx, e.db.Pool, c.id, c.key)
		if err != nil {
			t.Fatal(err)
		}
		if live != c.want {
			t.Errorf("IsLive(%s, %s) = %v, want %v", c.id, c.key, live, c.want)
		}
	}

	if err := load.Empty(ctx, e.db.Pool); err != nil {
		t.Fatal(err)
	}
	if n := e.count(`SELECT (SELECT count(*) FROM raw.record) + (SELECT count(*) FROM raw.record_history) + (SELECT count(*) FROM raw.scope_read)`); n != 0 {
		t.Errorf("%d rows left in raw after Empty", n)
	}
}

// The sample of a Moodle site: users past the guest and the administrator,
// and the course with most enrolments in groups, from live records only.
func TestSampleMoodleSite(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if s, err := load.SampleMoodleSite(ctx, e.db.Pool, "main"); err != nil || len(s.UserIDs) != 0 || s.CourseID != 0 {
		t.Fatalf("a site never extracted: %+v, %v", s, err)
	}
	users := extract.EntityID{Source: "moodle", Instance: "main", Entity: "users"}
	var up pass
	for _, k := range []string{"1", "2", "3", "10", "4", "guest-x"} {
		up.records = append(up.records, extract.Record{Key: k, Payload: json.RawMessage(`{"id":1}`)})
	}
	up.complete = []string{""}
	e.mustLoad(users, up)
	// Course 1: three enrolments, none in a group; course 2: two, one in a
	// group; course 3: one in a group, then emptied.
	p := pass{records: []extract.Record{rec(1, 1, ""), rec(1, 2, ""), rec(1, 3, ""),
		rec(2, 1, `,"groups":[{"id":7,"name":"A"}]`), rec(2, 2, `,"groups":[]`),
		rec(3, 1, `,"groups":[{"id":8,"name":"B"}]`), rec(3, 2, `,"groups":[{"id":8,"name":"B"}]`),
		rec(3, 3, `,"groups":[{"id":8,"name":"B"}]`)}, complete: []string{"1", "2", "3"}}
	e.mustLoad(enrolments, p)
	p.records = p.records[:5]
	e.mustLoad(enrolments, p)

	s, err := load.SampleMoodleSite(ctx, e.db.Pool, "main")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(s.UserIDs); got != "[3 4 10]" {
		t.Errorf("users %s, want [3 4 10] (not 1 and 2, not a key that is no number)", got)
	}
	if s.CourseID != 2 || s.Enrolled != 2 || s.GroupMembers != 1 {
		t.Errorf("course %d with %d enrolled, %d in groups; want course 2 with 2, 1 in a group", s.CourseID, s.Enrolled, s.GroupMembers)
	}
}
