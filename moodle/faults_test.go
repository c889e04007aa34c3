package moodle_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mimwarehouse/mim/moodle"
	"github.com/mimwarehouse/mim/moodle/moodletest"
	"github.com/mimwarehouse/mim/moodle/moodletest/recorded"
)

func TestTransientFailures(t *testing.T) {
	ctx := context.Background()
	xmlError := "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<EXCEPTION class=\"core\\exception\\moodle_exception\">\n" +
		"<ERRORCODE>invalidtoken</ERRORCODE>\n<MESSAGE>Invalid token - token not found</MESSAGE>\n</EXCEPTION>\n"
	for _, tc := range []struct {
		name  string
		fault moodletest.Fault
	}{
		{"502 proxy page", moodletest.Fault{Status: 502}},
		{"504 proxy page", moodletest.Fault{Status: 504}},
		{"500", moodletest.Fault{Status: 500, Body: "Internal Server Error"}},
		{"503", moodletest.Fault{Status: 503}},
		{"HTML with status 200", moodletest.Fault{Body: "<!DOCTYPE html><html><title>Site under maintenance</title></html>"}},
		{"XML instead of JSON", moodletest.Fault{Body: xmlError}},
		{"truncated JSON", moodletest.Fault{Truncate: 40}},
		{"hang until timeout", moodletest.Fault{Hang: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			site := moodletest.NewServer(t, recorded.State())
			c := newClient(t, site, site.Token(), moodle.WithRetries(3), moodle.WithTimeout(200*time.Millisecond))
			// Twice, then the site recovers: a read gets through.
			f := tc.fault
			f.Function, f.Times = "core_group_get_course_groups", 2
			site.Inject(f)
			groups, err := c.GetCourseGroups(ctx, 14)
			if err != nil || len(groups) != 4 || site.Calls("core_group_get_course_groups") != 3 {
				t.Fatalf("read through two failures: %v, %d groups, %d calls", err, len(groups), site.Calls("core_group_get_course_groups"))
			}
			// For good: the read gives up after its retries, transiently.
			site.ClearFaults()
			f.Times = 0
			site.Inject(f)
			before := site.Calls("")
			_, err = c.GetCourseGroups(ctx, 14)
			var te *moodle.TransientError
			if !errors.As(err, &te) || site.Calls("")-before != 4 {
				t.Fatalf("read against a failing site: %v after %d calls", err, site.Calls("")-before)
			}
			// A create is not idempotent: one attempt, and its outcome is unknown.
			site.ClearFaults()
			f.Function = "core_group_create_groups"
			site.Inject(f)
			before = site.Calls("")
			r, err := c.CreateGroups(ctx, []moodle.NewGroup{{CourseID: 14, Name: "Once"}})
			if !moodle.IsTransient(err) || site.Calls("")-before != 1 || r.Items[0].Err == nil {
				t.Fatalf("create against a failing site: %v after %d calls", err, site.Calls("")-before)
			}
		})
	}
}

func TestIdempotentWritesRetried(t *testing.T) {
	ctx := context.Background()
	site, c := newSite(t)
	site.Inject(moodletest.Fault{Function: "core_group_add_group_members", Status: 502, Times: 1})
	r, err := c.AddGroupMembers(ctx, []moodle.Member{{GroupID: 56, UserID: 107}})
	if err != nil || r.Requests != 1 || site.Calls("core_group_add_group_members") != 2 {
		t.Fatalf("add member through one 502: %v, %d requests, %d calls", err, r.Requests, site.Calls("core_group_add_group_members"))
	}
	if got, _ := site.GroupMembers(56); !slices.Equal(got, []int64{107, 412}) {
		t.Errorf("members of 56: %v", got)
	}
}

func TestThrottling(t *testing.T) {
	ctx := context.Background()
	site, c := newSite(t)
	site.Inject(moodletest.Fault{Function: "core_group_get_course_groupings", Status: 429, Times: 1})
	if _, err := c.GetCourseGroupings(ctx, 14); err != nil {
		t.Fatalf("a throttled read is retried: %v", err)
	}
	site.ClearFaults()
	site.Inject(moodletest.Fault{Function: "core_group_get_course_groupings", Status: 429})
	c2 := newClient(t, site, site.Token(), moodle.WithRetries(0))
	_, err := c2.GetCourseGroupings(ctx, 14)
	var te *moodle.TransientError
	if !errors.As(err, &te) || !te.Throttled() || te.RetryAfter != time.Second {
		t.Fatalf("throttled: %v", err)
	}
}

// A Moodle exception is not transient: it is not retried.
func TestMoodleErrorsNotRetried(t *testing.T) {
	ctx := context.Background()
	site, c := newSite(t)
	site.Inject(moodletest.Fault{Function: "core_group_get_course_groups", Exception: &moodletest.Exception{
		Class: `core\exception\moodle_exception`, ErrorCode: "servicebusy", Message: "Try later"}, Times: 1})
	_, err := c.GetCourseGroups(ctx, 14)
	if k, ok := moodle.KindOf(err); !ok || k != moodle.Other || site.Calls("core_group_get_course_groups") != 1 {
		t.Fatalf("an exception on the first call: %v, %d calls", err, site.Calls("core_group_get_course_groups"))
	}
	// The fault was for the first call only.
	if _, err := c.GetCourseGroups(ctx, 14); err != nil {
		t.Fatal(err)
	}
}

// The client never sends more form variables than its budget, so PHP's
// max_input_vars never silently drops part of a request; lists are split.
func TestMaxInputVars(t *testing.T) {
	ctx := context.Background()
	site, _ := newSite(t, moodletest.WithMaxInputVars(60))
	var mu sync.Mutex
	var reqs []moodletest.Request
	site.OnRequest(func(r moodletest.Request) { mu.Lock(); reqs = append(reqs, r); mu.Unlock() })
	c := newClient(t, site, site.Token(), moodle.WithMaxInputVars(50))

	var idnumbers []string
	st := recorded.State()
	for _, u := range st.Users {
		if u.IDNumber != "" {
			idnumbers = append(idnumbers, u.IDNumber)
		}
	}
	users, err := c.GetUsersByField(ctx, "idnumber", idnumbers)
	if err != nil || len(users) != len(idnumbers) {
		t.Fatalf("%d users by %d idnumbers: %v", len(users), len(idnumbers), err)
	}
	var members []moodle.Member
	for _, uid := range []int64{4, 107, 108, 127, 135, 377, 398, 412, 414} {
		members = append(members, moodle.Member{GroupID: 56, UserID: uid})
	}
	members = slices.Repeat(members, 4) // 36 items of 2 variables each
	r, err := c.AddGroupMembers(ctx, members)
	if err != nil || r.Requests < 2 {
		t.Fatalf("add 36 members under 50 variables: %v in %d requests", err, r.Requests)
	}
	got, _ := site.GroupMembers(56)
	if len(got) != 9 {
		t.Errorf("members of 56: %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reqs) < 5 {
		t.Fatalf("only %d requests", len(reqs))
	}
	for _, r := range reqs {
		if r.Vars > 50 || r.Dropped != 0 {
			t.Errorf("%s: %d variables, %d dropped", r.Function, r.Vars, r.Dropped)
		}
	}
	// Call refuses what would be truncated.
	err = c.Call(ctx, "core_user_get_users_by_field", moodle.P("field", "idnumber", "values", idnumbers), nil)
	if err == nil || !strings.Contains(err.Error(), "max input vars") {
		t.Errorf("an oversized Call: %v", err)
	}
}

// What the splitting prevents: a client whose budget is above the site's
// max_input_vars has a batch cut short, and Moodle answers as if nothing
// were wrong for the part it kept.
func TestTruncationIsSilent(t *testing.T) {
	ctx := context.Background()
	// PHP keeps max_input_vars + 1 variables: 3 protocol variables + 5 members.
	site, _ := newSite(t, moodletest.WithMaxInputVars(12))
	c := newClient(t, site, site.Token(), moodle.WithMaxInputVars(100))
	var members []moodle.Member
	for _, uid := range []int64{4, 107, 108, 127, 135, 377, 398, 414} {
		members = append(members, moodle.Member{GroupID: 56, UserID: uid})
	}
	if _, err := c.AddGroupMembers(ctx, members); err != nil {
		t.Fatalf("PHP dropped variables without an error, so Moodle did too: %v", err)
	}
	got, _ := site.GroupMembers(56)
	if len(got) != 6 { // 412 was there; 5 of the 8 arrived
		t.Fatalf("members of 56 after a truncated request: %v", got)
	}
}

func TestBisection(t *testing.T) {
	ctx := context.Background()
	site, _ := newSite(t)
	c := newClient(t, site, site.Token(), moodle.WithBatchSize(100))
	enrolled := []int64{4, 107, 108, 127, 135, 377, 398, 412, 414}
	var members []moodle.Member
	for i := range 20 {
		uid := enrolled[i%len(enrolled)]
		if i == 3 || i == 15 {
			uid = 200 + int64(i) // not enrolled in course 14
		}
		members = append(members, moodle.Member{GroupID: 1, UserID: uid})
	}
	r, err := c.AddGroupMembers(ctx, members)
	var be *moodle.BatchError
	if !errors.As(err, &be) || be.Failed != 2 || be.Total != 20 {
		t.Fatalf("two bad members of 20: %v", err)
	}
	failed := r.Failed()
	if len(failed) != 2 || failed[0].Index != 3 || failed[1].Index != 15 {
		t.Fatalf("failed items: %+v", failed)
	}
	for _, f := range failed {
		var me *moodle.Error
		if !errors.As(f.Err, &me) || me.Kind != moodle.InvalidParameter || me.DebugInfo != "Only enrolled users may be members of groups" ||
			!strings.Contains(f.Err.Error(), fmt.Sprintf("user %d", members[f.Index].UserID)) {
			t.Errorf("item %d: %v", f.Index, f.Err)
		}
	}
	got, _ := site.GroupMembers(1)
	if !slices.Equal(got, enrolled) {
		t.Errorf("members of group 1: %v, want every enrolled user", got)
	}
	// One request, then halves down to each bad item: at most
	// 1 + 2·2·log2(20) requests, far fewer than one per item.
	if r.Requests > 1+2*2*5 || r.Requests < 5 {
		t.Errorf("%d requests", r.Requests)
	}

	// Groups whose name or idnumber is taken fail alone; ids are checked.
	gr, err := c.CreateGroups(ctx, []moodle.NewGroup{
		{CourseID: 14, Name: "New A", IDNumber: "mim:A"},
		{CourseID: 14, Name: "Tutorial B"},
		{CourseID: 14, Name: "New C", IDNumber: "MOD1234-A7U-T1-2025-LAB1"},
		{CourseID: 14, Name: "New D"},
	})
	if !errors.As(err, &be) || be.Failed != 2 {
		t.Fatalf("create with two taken: %v", err)
	}
	if gr.Items[0].Err != nil || gr.Items[3].Err != nil || gr.Items[0].Value.ID <= 0 || gr.Items[3].Value.Name != "New D" ||
		!isKind(gr.Items[1].Err, moodle.InvalidParameter) || !isKind(gr.Items[2].Err, moodle.Other) {
		t.Errorf("create results: %+v", gr.Items)
	}
}

// A failure no splitting can isolate stops the batch at once.
func TestFatalStopsBatch(t *testing.T) {
	ctx := context.Background()
	site, _ := newSite(t)
	site.AddToken(moodletest.Token{Token: "reader", Functions: moodle.ReadFunctions})
	c := newClient(t, site, "reader", moodle.WithBatchSize(2))
	r, err := c.DeleteGroups(ctx, []int64{1, 2, 3, 56, 57})
	if !isKind(err, moodle.AccessException) || r.Requests != 1 || site.Calls("core_group_delete_groups") != 1 {
		t.Fatalf("delete without the function: %v, %d requests", err, r.Requests)
	}
	for _, it := range r.Items[2:] {
		if !errors.Is(it.Err, moodle.ErrNotAttempted) || !isKind(it.Err, moodle.AccessException) {
			t.Errorf("item %d: %v", it.Index, it.Err)
		}
	}
	if st := site.Snapshot(); len(st.Groups) != 6 {
		t.Errorf("%d groups left, want all 6", len(st.Groups))
	}
}

// The rate limiter waits rather than refusing, and no more requests than
// the cap are ever in flight.
func TestRateAndConcurrency(t *testing.T) {
	ctx := context.Background()
	site, err := moodletest.New(recorded.State(), moodletest.WithLatency(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var inFlight, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		site.ServeHTTP(w, r)
		inFlight.Add(-1)
	}))
	defer srv.Close()
	c, err := moodle.New("test", srv.URL, site.Token(), moodle.WithConcurrency(3), moodle.WithRate(200))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.GetCourseGroups(ctx, 14)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if site.Calls("") != 30 || peak.Load() > 3 {
		t.Errorf("%d calls, %d in flight at most (cap 3)", site.Calls(""), peak.Load())
	}
}

type recordingObserver struct {
	mu   sync.Mutex
	seen []string
}

func (o *recordingObserver) RequestObserved(instance, function, outcome string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, instance+"|"+function+"|"+outcome)
}

// The token appears in no error, no log line (resty's included), and no
// metric label, whatever fails.
func TestTokenNeverLeaks(t *testing.T) {
	ctx := context.Background()
	const token = "f00dfacecafe4242f00dfacecafe4242"
	site := moodletest.NewServer(t, recorded.State(), moodletest.WithToken(token))
	var logs bytes.Buffer
	obs := &recordingObserver{}
	c := newClient(t, site, token, moodle.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		moodle.WithObserver(obs), moodle.WithTimeout(100*time.Millisecond), moodle.WithRetries(1))
	if _, err := c.GetCourseGroups(ctx, 14); err != nil {
		t.Fatal(err)
	}
	var errs []error
	collect := func(err error) {
		if err == nil {
			t.Error("expected a failure")
		}
		errs = append(errs, err)
	}
	// A Moodle that echoes the token in its message.
	site.Inject(moodletest.Fault{Function: "core_group_get_course_groups", Times: 1,
		Exception: &moodletest.Exception{Class: "moodle_exception", ErrorCode: "x", Message: "bad token " + token, DebugInfo: "wstoken=" + token}})
	_, err := c.GetCourseGroups(ctx, 14)
	collect(err)
	for _, f := range []moodletest.Fault{{Status: 502}, {Hang: true}, {Truncate: 10}, {Body: "<html>" + token + "</html>"}} {
		site.ClearFaults()
		site.Inject(f)
		_, err := c.GetCourseGroups(ctx, 14)
		collect(err)
		_, err = c.CreateGroups(ctx, []moodle.NewGroup{{CourseID: 14, Name: "x"}})
		collect(err)
	}
	site.ClearFaults()
	_, err = c.AddGroupMembers(ctx, []moodle.Member{{GroupID: 1, UserID: 105}})
	collect(err)
	// Wrong path (404), a redirect, and a closed site.
	wrong, _ := moodle.New("test", site.URL()+"/nope", token, moodle.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	_, err = wrong.SiteInfo(ctx)
	collect(err)
	redirect := httptest.NewServer(http.RedirectHandler("https://elsewhere.example/?wstoken="+token, http.StatusFound))
	rc, _ := moodle.New("test", redirect.URL, token, moodle.WithRetries(0))
	_, err = rc.SiteInfo(ctx)
	collect(err)
	var se *moodle.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusFound || !strings.HasPrefix(se.Location, "https://elsewhere.example/") {
		t.Errorf("a redirect is reported, not followed: %v", err)
	} else if strings.Contains(se.Location, token) {
		t.Errorf("the redirect's location leaks the token: %s", se.Location)
	}
	redirect.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	cc, _ := moodle.New("test", closed.URL, token, moodle.WithRetries(0),
		moodle.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	_, err = cc.SiteInfo(ctx)
	collect(err)

	for _, err := range errs {
		if err != nil && strings.Contains(err.Error(), token) {
			t.Errorf("error leaks the token: %v", err)
		}
		var me *moodle.Error
		if errors.As(err, &me) && (strings.Contains(me.Message, token) || strings.Contains(me.DebugInfo, token)) {
			t.Errorf("Moodle error fields leak the token: %+v", me)
		}
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("logs leak the token:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "moodle request") || !strings.Contains(logs.String(), "retrying") {
		t.Errorf("the logs do not show the requests:\n%s", logs.String())
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	outcomes := map[string]bool{}
	for _, s := range obs.seen {
		if strings.Contains(s, token) {
			t.Errorf("metric labels leak the token: %s", s)
		}
		outcomes[s[strings.LastIndex(s, "|")+1:]] = true
	}
	for _, o := range []string{moodle.OutcomeOK, moodle.OutcomeMoodleError, moodle.OutcomeTransient, moodle.OutcomeTimeout} {
		if !outcomes[o] {
			t.Errorf("outcome %s never observed: %v", o, outcomes)
		}
	}
}

func TestCanceled(t *testing.T) {
	site, c := newSite(t)
	site.Inject(moodletest.Fault{Hang: true})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err := c.GetCourseGroups(ctx, 14)
	if !errors.Is(err, context.Canceled) || moodle.IsTransient(err) {
		t.Fatalf("canceled read: %v", err)
	}
}

// A caller's deadline shorter than the wait for the rate limit ends the
// call as the caller's decision, not as a failure of the site.
func TestRateWaitPastDeadline(t *testing.T) {
	site, _ := newSite(t)
	c := newClient(t, site, site.Token(), moodle.WithRate(0.5))
	if _, err := c.GetCourseGroups(context.Background(), 14); err != nil { // takes the one token
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.GetCourseGroups(ctx, 14)
	if err == nil || moodle.IsTransient(err) || !strings.Contains(err.Error(), "rate limit") || site.Calls("") != 1 {
		t.Fatalf("%v after %d calls", err, site.Calls(""))
	}
}
