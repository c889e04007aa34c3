package moodle

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestWithKeys(t *testing.T) {
	for _, c := range []struct {
		in   string
		kvs  []kv
		want string
	}{
		{`{"id":5,"username":"a"}`, []kv{{"mim_courseid", int64(14)}, {"mim_suspended", true}}, `{"id":5,"username":"a","mim_courseid":14,"mim_suspended":true}`},
		{" {\n \"id\": 1.50 } \n", []kv{{"mim_groupids", []int64{3, 4}}}, "{\n \"id\": 1.50 ,\"mim_groupids\":[3,4]}"},
		{`{}`, []kv{{"mim_groupids", []int64{}}}, `{"mim_groupids":[]}`},
		{`{ }`, []kv{{"mim_a", "<b>"}}, `{ "mim_a":"<b>"}`},
	} {
		got, err := withKeys(json.RawMessage(c.in), c.kvs...)
		if err != nil || string(got) != c.want {
			t.Errorf("withKeys(%s) = %s, %v; want %s", c.in, got, err, c.want)
		}
		if !json.Valid(got) {
			t.Errorf("withKeys(%s) is not JSON: %s", c.in, got)
		}
	}
	// The object as sent is not touched, even with room behind it.
	buf := make([]byte, 0, 64)
	buf = append(buf, `{"id":1}`...)
	if _, err := withKeys(buf, kv{"mim_x", 1}); err != nil || string(buf[:cap(buf)][8:9]) != "\x00" {
		t.Errorf("withKeys wrote into its input's spare capacity: %q", buf[:cap(buf)])
	}
	for _, bad := range []string{`[1]`, `"x"`, ``, `{"id":1`} {
		if _, err := withKeys(json.RawMessage(bad), kv{"mim_x", 1}); err == nil {
			t.Errorf("withKeys(%q) accepted a non-object", bad)
		}
	}
	if _, err := withKeys(json.RawMessage(`{}`), kv{"courseid", 1}); err == nil {
		t.Error("a key without the mim_ prefix was accepted")
	}
}

func TestSplitGradeItemRecordedAnswer(t *testing.T) {
	// Recorded from a real Moodle 4.5 (the simulator's fidelity tests use it too).
	b, err := os.ReadFile("../../moodle/moodletest/testdata/samples/raw/gradereport_user_get_grade_items.json")
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		Usergrades []struct {
			Gradeitems []json.RawMessage
		}
	}
	if err := json.Unmarshal(b, &answer); err != nil {
		t.Fatal(err)
	}
	raw := answer.Usergrades[0].Gradeitems[0]
	item, grade, err := splitGradeItem(raw)
	if err != nil {
		t.Fatal(err)
	}
	var im, gm map[string]json.RawMessage
	if err := json.Unmarshal(item, &im); err != nil {
		t.Fatalf("item %s: %v", item, err)
	}
	if err := json.Unmarshal(grade, &gm); err != nil {
		t.Fatalf("grade %s: %v", grade, err)
	}
	for _, k := range []string{"id", "itemname", "itemtype", "idnumber", "categoryid", "weightraw", "grademin", "grademax", "locked"} {
		if _, ok := im[k]; !ok {
			t.Errorf("the item lacks %s: %s", k, item)
		}
	}
	for _, k := range []string{"graderaw", "gradedategraded", "gradeformatted", "feedback", "percentageformatted", "grademin", "grademax"} {
		if _, ok := gm[k]; !ok {
			t.Errorf("the grade lacks %s: %s", k, grade)
		}
	}
	for _, k := range []string{"graderaw", "feedback", "gradeishidden", "percentageformatted"} {
		if _, ok := im[k]; ok {
			t.Errorf("the item carries the user's %s", k)
		}
	}
	if string(im["weightraw"]) != "0.66667" || string(gm["graderaw"]) != "80.43" {
		t.Errorf("numbers not kept as sent: weightraw %s graderaw %s", im["weightraw"], gm["graderaw"])
	}
	// Every member goes somewhere; only the range is in both.
	var all map[string]json.RawMessage
	_ = json.Unmarshal(raw, &all)
	if len(im)+len(gm) != len(all)+2 {
		t.Errorf("%d + %d members from %d", len(im), len(gm), len(all))
	}
}

func TestLimitIncludesSubcategories(t *testing.T) {
	cats := []category{{1, "", "/1"}, {2, "FAC", "/1/2"}, {3, "DEP", "/1/2/3"}, {4, "", "/1/2/3/4"}, {5, "OTHER", "/5"}, {6, "X", "/5/6"}}
	in, err := limit("grades", cats, nil, []string{"FAC", "X"})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[int64]bool{1: false, 2: true, 3: true, 4: true, 5: false, 6: true} {
		if in[id] != want {
			t.Errorf("category %d included: %v", id, in[id])
		}
	}
	if _, err := limit("grades", cats, nil, []string{"NOPE"}); err == nil || !strings.Contains(err.Error(), `grades.categories names "NOPE"`) {
		t.Errorf("unknown idnumber: %v", err)
	}
	if _, err := limit("completion", nil, errors.New("down"), []string{"FAC"}); err == nil || !strings.Contains(err.Error(), "down") {
		t.Errorf("unreadable categories: %v", err)
	}
}

func TestForEachStopsAfterFailuresInARow(t *testing.T) {
	items := make([]int, 200)
	for i := range items {
		items[i] = i
	}
	run := func(workers int, fails func(int) bool) (calls int64, skipped map[int]error) {
		var n atomic.Int64
		var mu sync.Mutex
		skipped = map[int]error{}
		forEach(context.Background(), workers, 10, items, func(ctx context.Context, i int) error {
			n.Add(1)
			if fails(i) {
				return errors.New("HTTP 502")
			}
			return nil
		}, func(i int, cause error) {
			mu.Lock()
			skipped[i] = cause
			mu.Unlock()
		})
		if int(n.Load())+len(skipped) != len(items) {
			t.Errorf("%d called + %d skipped of %d", n.Load(), len(skipped), len(items))
		}
		return n.Load(), skipped
	}
	// Everything fails: ten reads, plus at most those in flight and one
	// handed over as the breaker trips.
	calls, skipped := run(4, func(int) bool { return true })
	if calls < 10 || calls > 10+4+1 {
		t.Errorf("%d calls: the breaker should stop after 10 failures in a row", calls)
	}
	for _, err := range skipped {
		if !strings.Contains(err.Error(), "gave up after 10 reads in a row failed, the last with: HTTP 502") {
			t.Fatalf("skip cause: %v", err)
		}
	}
	// One worker makes "in a row" exact: five successes, then ten failures.
	if calls, _ := run(1, func(i int) bool { return i >= 5 }); calls != 15 {
		t.Errorf("%d calls, want 15", calls)
	}
	// Successes in between reset the count: nothing is skipped.
	if calls, skipped := run(1, func(i int) bool { return i%5 != 0 }); calls != int64(len(items)) || len(skipped) != 0 {
		t.Errorf("%d calls, %d skipped despite successes", calls, len(skipped))
	}
}
