package schedule

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeClock is advanced by the test; After fires once the time is reached.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	c  chan time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := make(chan time.Time, 1)
	if d <= 0 {
		c <- f.now
		return c
	}
	f.waiters = append(f.waiters, waiter{at: f.now.Add(d), c: c})
	return c
}

func (f *fakeClock) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = t
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if !w.at.After(t) {
			w.c <- t
		} else {
			kept = append(kept, w)
		}
	}
	f.waiters = kept
}

func next(t *testing.T, events <-chan Event) Event {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no scheduler event within 10s")
		return Event{}
	}
}

func expect(t *testing.T, events <-chan Event, kind string, due time.Time) Event {
	t.Helper()
	e := next(t, events)
	if e.Kind != kind || !e.Due.Equal(due) {
		t.Fatalf("event %s due %s (%s); want %s due %s", e.Kind, e.Due.Format("15:04"), e.Note, kind, due.Format("15:04"))
	}
	return e
}

func TestSchedulerNoOverlapAndMissed(t *testing.T) {
	at := func(hm string) time.Time { return utc("2026-05-04 " + hm) }
	clock := &fakeClock{now: at("10:00").Add(30 * time.Second)}
	events := make(chan Event, 100)
	release := make(chan struct{})
	var mu sync.Mutex
	var ran []time.Time
	s, err := New([]Job{{
		Name:     "every-minute",
		Schedule: MustParse("* * * * *", time.UTC),
		Run: func(ctx context.Context, due time.Time) error {
			mu.Lock()
			ran = append(ran, due)
			mu.Unlock()
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		},
	}}, WithClock(clock), WithEvents(func(e Event) { events <- e }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()

	// Wait for the loop to compute its first time, then reach it.
	waitUpcoming(t, s, clock, at("10:01"))
	clock.Set(at("10:01"))
	expect(t, events, Started, at("10:01"))
	// Due again while still running: skipped, not started twice.
	waitSleeping(t, clock)
	clock.Set(at("10:02"))
	expect(t, events, Skipped, at("10:02"))
	release <- struct{}{}
	expect(t, events, Finished, at("10:01"))
	waitUpcoming(t, s, clock, at("10:03"))
	clock.Set(at("10:03"))
	expect(t, events, Started, at("10:03"))
	release <- struct{}{}
	expect(t, events, Finished, at("10:03"))
	// The clock jumps over six times: one run, for the latest; the rest missed.
	waitUpcoming(t, s, clock, at("10:04"))
	clock.Set(at("10:09").Add(10 * time.Second))
	m := expect(t, events, Missed, at("10:04"))
	if m.Note == "" {
		t.Error("a missed event should say why")
	}
	expect(t, events, Started, at("10:09"))
	release <- struct{}{}
	expect(t, events, Finished, at("10:09"))

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ran) != 3 {
		t.Errorf("ran %d times (%v); want 3", len(ran), ran)
	}
}

func waitSleeping(t *testing.T, clock *fakeClock) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		clock.mu.Lock()
		n := len(clock.waiters)
		clock.mu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the scheduler never went back to sleep")
}

// waitUpcoming waits until the loop plans want and sleeps on the clock.
func waitUpcoming(t *testing.T, s *Scheduler, clock *fakeClock, want time.Time) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		u := s.Upcoming()
		clock.mu.Lock()
		sleeping := len(clock.waiters) > 0
		clock.mu.Unlock()
		if len(u) == 1 && u[0].Next.Equal(want) && !u[0].Running && sleeping {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("the scheduler never planned %s: %+v", want, s.Upcoming())
}

func TestNewRejectsDuplicates(t *testing.T) {
	j := Job{Name: "a", Schedule: MustParse("@daily", time.UTC), Run: func(context.Context, time.Time) error { return nil }}
	if _, err := New([]Job{j, j}); err == nil {
		t.Error("two jobs with one name were accepted")
	}
	if _, err := New([]Job{{Name: "b"}}); err == nil {
		t.Error("a job without a schedule was accepted")
	}
}
