package schedule

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Job is work done at the times of a schedule.
type Job struct {
	Name     string
	Schedule *Schedule
	// Run does the job for the time it was due. The context ends when the
	// scheduler stops.
	Run func(ctx context.Context, due time.Time) error
}

// Event kinds.
const (
	Started  = "started"
	Finished = "finished"
	// Skipped: the job was due while its previous run was still going.
	Skipped = "skipped"
	// Missed: the job was due while the scheduler was not running (or was
	// held up), and was not run for that time.
	Missed = "missed"
)

// Event is something that happened to a job, for logs and the ledger.
type Event struct {
	Job  string
	Kind string
	Due  time.Time
	At   time.Time
	Err  error  // a finished run's error
	Note string // why, for skipped and missed
}

// Clock is the time source; tests substitute one they advance by hand.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Option configures a Scheduler.
type Option func(*Scheduler)

// WithClock replaces the real clock.
func WithClock(c Clock) Option { return func(s *Scheduler) { s.clock = c } }

// WithEvents receives every event. It is called from the scheduler's and the
// jobs' goroutines, possibly at once, and must not block for long.
func WithEvents(f func(Event)) Option { return func(s *Scheduler) { s.events = f } }

// maxSleep bounds one wait, so a wall clock stepped by NTP or a suspended
// machine is noticed within a minute.
const maxSleep = time.Minute

// Scheduler runs jobs at their times. A job never overlaps itself: a time
// that comes while the job still runs is skipped and reported.
type Scheduler struct {
	jobs   []Job
	clock  Clock
	events func(Event)

	mu      sync.Mutex
	running map[string]bool
	next    map[string]time.Time
}

// New returns a scheduler for jobs. Job names must be unique.
func New(jobs []Job, opts ...Option) (*Scheduler, error) {
	s := &Scheduler{jobs: jobs, clock: realClock{}, events: func(Event) {}, running: map[string]bool{}, next: map[string]time.Time{}}
	for _, o := range opts {
		o(s)
	}
	seen := map[string]bool{}
	for _, j := range jobs {
		switch {
		case j.Name == "" || j.Schedule == nil || j.Run == nil:
			return nil, errors.New("schedule: a job needs a name, a schedule and a function")
		case seen[j.Name]:
			return nil, fmt.Errorf("schedule: job %q is listed twice", j.Name)
		}
		seen[j.Name] = true
	}
	return s, nil
}

// Upcoming is one job's next time.
type Upcoming struct {
	Job      string
	Schedule string
	Next     time.Time
	Running  bool
}

// Upcoming lists each job's next time, soonest first.
func (s *Scheduler) Upcoming() []Upcoming {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	out := make([]Upcoming, 0, len(s.jobs))
	for _, j := range s.jobs {
		next, ok := s.next[j.Name]
		if !ok {
			next = j.Schedule.Next(now)
		}
		out = append(out, Upcoming{Job: j.Name, Schedule: j.Schedule.String(), Next: next, Running: s.running[j.Name]})
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Next.Before(out[b].Next) })
	return out
}

// Run runs the jobs until ctx ends, then waits for the runs in progress
// (whose context has ended too) and returns.
func (s *Scheduler) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	now := s.clock.Now()
	s.mu.Lock()
	for _, j := range s.jobs {
		s.next[j.Name] = j.Schedule.Next(now)
	}
	s.mu.Unlock()
	for {
		now = s.clock.Now()
		wait := maxSleep
		var events []Event
		type start struct {
			job Job
			due time.Time
		}
		var starts []start
		s.mu.Lock()
		for _, j := range s.jobs {
			due := s.next[j.Name]
			if due.IsZero() || due.After(now) {
				if !due.IsZero() && due.Sub(now) < wait {
					wait = due.Sub(now)
				}
				continue
			}
			// Due. If later times passed too while the scheduler was held up
			// (a suspended machine, a stepped clock), the job runs once, for
			// the latest, and the earlier ones are reported missed.
			if latest, n := j.Schedule.Missed(due, now); n > 0 {
				events = append(events, Event{Job: j.Name, Kind: Missed, Due: due, At: now,
					Note: fmt.Sprintf("%d time(s) passed while the scheduler was held up, from %s; running once, for %s",
						n, due.Format(time.RFC3339), latest.Format(time.RFC3339))})
				due = latest
			}
			s.next[j.Name] = j.Schedule.Next(now)
			if n := s.next[j.Name]; !n.IsZero() && n.Sub(now) < wait {
				wait = n.Sub(now)
			}
			if s.running[j.Name] {
				events = append(events, Event{Job: j.Name, Kind: Skipped, Due: due, At: now, Note: "the previous run of this job is still going"})
				continue
			}
			s.running[j.Name] = true
			starts = append(starts, start{j, due})
		}
		s.mu.Unlock()
		for _, e := range events {
			s.emit(e)
		}
		for _, st := range starts {
			wg.Add(1)
			go s.runJob(ctx, &wg, st.job, st.due)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.clock.After(max(wait, 0)):
		}
	}
}

func (s *Scheduler) runJob(ctx context.Context, wg *sync.WaitGroup, j Job, due time.Time) {
	defer wg.Done()
	s.emit(Event{Job: j.Name, Kind: Started, Due: due, At: s.clock.Now()})
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("job %s panicked: %v", j.Name, r)
			}
		}()
		return j.Run(ctx, due)
	}()
	s.mu.Lock()
	s.running[j.Name] = false
	s.mu.Unlock()
	s.emit(Event{Job: j.Name, Kind: Finished, Due: due, At: s.clock.Now(), Err: err})
}

func (s *Scheduler) emit(e Event) { s.events(e) }
