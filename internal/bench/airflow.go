package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mimwarehouse/mim/internal/progress"
	"github.com/mimwarehouse/mim/moodle"
)

// airflowPause is the seed's rate limit: one second after every call.
const airflowPause = time.Second

// airflow times the request pattern of the Airflow ELT seed
// (the incumbent's Airflow ELT DAGs: one DAG per site, each call in turn, a one-second pause
// after each; users, courses and roles once, then per course its enrolled
// users, enrolment methods, grade items and grades table, then the
// completion status of every enrolment) against the same simulated
// sites. It runs for real for o.AirflowSample on the first site, then
// estimates every site's total from its request count.
func (b *bench) airflow(ctx context.Context) error {
	if len(b.sites) == 0 {
		return nil
	}
	s := b.sites[0]
	b.logf("airflow: the seed's request pattern on site %s for %s", s.name, b.o.AirflowSample)
	sample, err := b.airflowSample(ctx, s)
	if err != nil {
		return fmt.Errorf("bench stage airflow: %w", err)
	}
	perRequest := sample.elapsed.Seconds() / float64(sample.requests)
	var sb strings.Builder
	fmt.Fprintf(&sb, "really run on site %s for %s: %d requests (%d answered with a Moodle exception: functions Moodle 4.5 lacks or the simulator leaves out, still a round trip each), %.3f s a request\n",
		s.name, secs(sample.elapsed), sample.requests, sample.exceptions, perRequest)
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "site\tcourses\tenrolments\trequests\trequests × (latency + 1 s)\tat the measured pace\t")
	var longest time.Duration
	for _, site := range b.rep.Sites {
		courses, enrolments := b.enrolmentPairs(site.Name)
		requests := 3 + 4*courses + enrolments
		formula := time.Duration(requests) * (b.o.Latency + airflowPause)
		measured := time.Duration(float64(requests) * perRequest * float64(time.Second))
		longest = max(longest, measured)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", site.Name, progress.Count(int64(courses)), progress.Count(int64(enrolments)),
			progress.Count(int64(requests)), hours(formula), hours(measured))
	}
	tw.Flush()
	fmt.Fprintf(&sb, "the DAGs (one per site) run side by side, so the night takes the longest site's time: %s (estimate; running it for real would take that long)\n", hours(longest))
	b.section("airflow: the incumbent Airflow DAGs' request pattern on the same simulated sites", sb.String())
	f := Figure{Stage: StageAirflow, What: fmt.Sprintf("Airflow pattern, %d sites side by side (estimated from a %s sample)", len(b.rep.Sites), secs(sample.elapsed)),
		Measured: hours(longest) + " (extract only)"}
	if kind, night1 := b.fastestFirstNight(); night1 > 0 {
		f.Reference = fmt.Sprintf("mim run, first night (read by %s) %s", kindName(kind), secs(night1))
		f.Ratio, f.Unit = longest.Seconds()/night1.Seconds(), "× mim run"
	}
	b.add(f)
	return nil
}

// airflowResult counts the calls the sample completed (request and pause)
// and the time they took.
type airflowResult struct {
	requests, exceptions int
	elapsed              time.Duration
}

// airflowSample runs the pattern on one site until the sample time is up
// (or the pattern ends, on a tiny site).
func (b *bench) airflowSample(ctx context.Context, s *simSite) (airflowResult, error) {
	var res airflowResult
	c, err := moodle.New(s.name, s.site.URL(), s.token, moodle.WithRate(0), moodle.WithConcurrency(1), moodle.WithRetries(0))
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, b.o.AirflowSample)
	defer cancel()
	start := time.Now()
	errStop := errors.New("sample over")
	// call makes one request and pauses, as the seed's client does; a
	// Moodle exception is counted and the DAG goes on.
	call := func(err error) error {
		if ctx.Err() != nil {
			return errStop
		}
		var me *moodle.Error
		if err != nil && !errors.As(err, &me) {
			return err
		}
		select {
		case <-ctx.Done():
			return errStop
		case <-time.After(airflowPause):
		}
		res.requests++
		if me != nil {
			res.exceptions++
		}
		res.elapsed = time.Since(start)
		return nil
	}
	var raw json.RawMessage
	run := func() error {
		_, _, err := c.GetUsers(ctx, moodle.Criterion{Key: "email", Value: "%"}) // the DAGs' criterion
		if err := call(err); err != nil {
			return err
		}
		courses, err := c.GetCourses(ctx)
		if err := call(err); err != nil {
			return err
		}
		if err := call(c.Call(ctx, "core_role_get_all_roles", nil, &raw)); err != nil {
			return err
		}
		enrolled := map[int64][]int64{}
		for _, course := range courses {
			us, err := c.GetEnrolledUsers(ctx, int64(course.ID), moodle.EnrolledUsersOptions{})
			if err := call(err); err != nil {
				return err
			}
			for _, u := range us {
				enrolled[int64(course.ID)] = append(enrolled[int64(course.ID)], int64(u.ID))
			}
		}
		for _, fn := range []string{"core_enrol_get_course_enrolment_methods", "gradereport_user_get_grade_items", "gradereport_user_get_grades_table"} {
			for _, course := range courses {
				if err := call(c.Call(ctx, fn, moodle.P("courseid", int64(course.ID)), &raw)); err != nil {
					return err
				}
			}
		}
		for _, course := range courses {
			for _, u := range enrolled[int64(course.ID)] {
				if err := call(c.Call(ctx, "core_completion_get_course_completion_status", moodle.P("courseid", int64(course.ID), "userid", u), &raw)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err = run()
	if err != nil && !errors.Is(err, errStop) && ctx.Err() == nil {
		return res, err
	}
	if res.requests == 0 {
		return res, fmt.Errorf("the Airflow pattern made no request in %s", b.o.AirflowSample)
	}
	return res, nil
}

// enrolmentPairs counts a site's courses (the front page included, as
// core_course_get_courses returns it) and its enrolled users per course.
func (b *bench) enrolmentPairs(site string) (courses, enrolments int) {
	for _, s := range b.in.Sites {
		if s.Name != site {
			continue
		}
		type pair struct{ c, u int64 }
		seen := map[pair]bool{}
		for _, e := range s.State.Enrolments {
			seen[pair{e.CourseID, e.UserID}] = true
		}
		hasFront := false
		for _, c := range s.State.Courses {
			hasFront = hasFront || c.ID == 1
		}
		courses = len(s.State.Courses)
		if !hasFront {
			courses++
		}
		return courses, len(seen)
	}
	return 0, 0
}

func hours(d time.Duration) string {
	if d < time.Hour {
		return secs(d)
	}
	return fmt.Sprintf("%.1f h", d.Hours())
}
