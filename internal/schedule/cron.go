// Package schedule reads the cron expressions of `mim serve` (five fields,
// with an optional CRON_TZ= time zone) and runs jobs at their times, one at a
// time per job. Daylight-saving changes follow Vixie cron: a job at a fixed
// time runs once a day even when the clock goes back, and runs at the end of
// the gap when the clock jumps over its time; a job with a wildcard minute or
// hour simply follows the clock.
package schedule

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed cron expression.
type Schedule struct {
	expr     string
	loc      *time.Location
	minute   uint64 // bit i: minute i
	hour     uint64
	dom      uint64 // bits 1..31
	month    uint64 // bits 1..12
	dow      uint64 // bits 0..6, Sunday 0
	domStar  bool   // the day-of-month field was '*' (or '?')
	dowStar  bool
	wildcard bool // the minute or hour field starts with '*': follows the clock through DST
}

type field struct {
	name     string
	min, max int
	names    map[string]int
}

var (
	fMinute = field{name: "minute", min: 0, max: 59}
	fHour   = field{name: "hour", min: 0, max: 23}
	fDom    = field{name: "day of month", min: 1, max: 31}
	fMonth  = field{name: "month", min: 1, max: 12, names: map[string]int{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}}
	fDow = field{name: "day of week", min: 0, max: 7, names: map[string]int{
		"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}}
)

var descriptors = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// horizon bounds the search for the next time: a schedule that matches
// nothing within it (30 February) is refused when parsed.
const horizon = 5 * 366 * 24 * time.Hour

// Parse reads a cron expression: "[CRON_TZ=Zone ]min hour dom month dow" or a
// descriptor (@daily, @hourly, ...). Without CRON_TZ= (or TZ=) the times are
// those of loc. Fields take *, numbers, ranges a-b, steps */n and a-b/n,
// lists, and English names for months and days (jan, mon); day of week 7 is
// Sunday too. When both day fields are restricted a day matching either one
// matches, as in every cron.
func Parse(expr string, loc *time.Location) (*Schedule, error) {
	if loc == nil {
		loc = time.Local
	}
	s := &Schedule{expr: strings.TrimSpace(expr), loc: loc}
	rest := s.expr
	if rest == "" {
		return nil, &SyntaxError{Expr: expr, Msg: "empty"}
	}
	for _, prefix := range []string{"CRON_TZ=", "TZ="} {
		if strings.HasPrefix(rest, prefix) {
			zone, after, _ := strings.Cut(rest[len(prefix):], " ")
			l, err := time.LoadLocation(zone)
			if err != nil || zone == "" {
				return nil, &SyntaxError{Expr: expr, Msg: fmt.Sprintf("unknown time zone %q", zone)}
			}
			s.loc, rest = l, strings.TrimSpace(after)
			break
		}
	}
	if d, ok := descriptors[strings.ToLower(rest)]; ok {
		rest = d
	} else if strings.HasPrefix(rest, "@") {
		return nil, &SyntaxError{Expr: expr, Msg: fmt.Sprintf("unknown descriptor %q (known: @yearly, @monthly, @weekly, @daily, @hourly)", rest)}
	}
	fields := strings.Fields(rest)
	if len(fields) != 5 {
		return nil, &SyntaxError{Expr: expr, Msg: fmt.Sprintf("has %d fields; want 5: minute hour day-of-month month day-of-week", len(fields))}
	}
	var err error
	parsers := []struct {
		f    field
		dst  *uint64
		star *bool
	}{{fMinute, &s.minute, nil}, {fHour, &s.hour, nil}, {fDom, &s.dom, &s.domStar}, {fMonth, &s.month, nil}, {fDow, &s.dow, &s.dowStar}}
	for i, p := range parsers {
		var star bool
		if *p.dst, star, err = parseField(fields[i], p.f); err != nil {
			return nil, &SyntaxError{Expr: expr, Msg: err.Error()}
		}
		if p.star != nil {
			*p.star = star
		}
	}
	if s.dow&(1<<7) != 0 { // 7 is Sunday
		s.dow = s.dow&^(1<<7) | 1
	}
	s.wildcard = strings.HasPrefix(fields[0], "*") || strings.HasPrefix(fields[1], "*")
	ref := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	if s.Next(ref).IsZero() {
		return nil, &SyntaxError{Expr: expr, Msg: "never matches a real date"}
	}
	return s, nil
}

// MustParse is Parse for expressions known to be valid; it panics otherwise.
func MustParse(expr string, loc *time.Location) *Schedule {
	s, err := Parse(expr, loc)
	if err != nil {
		panic(err)
	}
	return s
}

// SyntaxError says what is wrong with a cron expression.
type SyntaxError struct {
	Expr, Msg string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("cron expression %q: %s", e.Expr, e.Msg) }

func parseField(s string, f field) (bits uint64, star bool, err error) {
	// As in Vixie cron, a day field starting with '*' (even "*/2") leaves
	// the other day field alone to decide.
	star = strings.HasPrefix(s, "*") || strings.HasPrefix(s, "?")
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			return 0, false, fmt.Errorf("%s field %q has an empty list item", f.name, s)
		}
		rng, stepText, hasStep := strings.Cut(part, "/")
		lo, hi := f.min, f.max
		switch {
		case rng == "*" || rng == "?":
			if f.name == fDow.name {
				hi = 6
			}
		default:
			a, b, isRange := strings.Cut(rng, "-")
			if lo, err = value(a, f); err != nil {
				return 0, false, err
			}
			hi = lo
			if isRange {
				if hi, err = value(b, f); err != nil {
					return 0, false, err
				}
				if hi < lo {
					return 0, false, fmt.Errorf("%s range %q runs backwards", f.name, rng)
				}
			} else if hasStep {
				hi = f.max // "5/15" means 5-max/15
			}
		}
		step := 1
		if hasStep {
			if step, err = strconv.Atoi(stepText); err != nil || step < 1 || step > f.max {
				return 0, false, fmt.Errorf("%s step %q is not a number between 1 and %d", f.name, stepText, f.max)
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, star, nil
}

func value(s string, f field) (int, error) {
	if v, ok := f.names[strings.ToLower(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < f.min || v > f.max {
		return 0, fmt.Errorf("%s %q is not a value between %d and %d", f.name, s, f.min, f.max)
	}
	return v, nil
}

// String returns the expression as written.
func (s *Schedule) String() string { return s.expr }

// Location is the time zone the schedule's times are read in.
func (s *Schedule) Location() *time.Location { return s.loc }

// Next returns the first time strictly after t the schedule fires, or the
// zero time if none within five years.
//
// Times are wall-clock times in the schedule's zone. When the clock goes back
// and a wall time happens twice, a wildcard job (minute or hour field starting
// with '*') fires both times and a fixed-time job only the first time; when
// the clock jumps forward over a wall time, a wildcard job skips it and a
// fixed-time job fires at the instant the jump ends.
func (s *Schedule) Next(t time.Time) time.Time {
	// Wall times are handled as naive times in UTC. The search starts a few
	// hours before t's wall time: after the clock went back, an earlier wall
	// time can still be ahead of t.
	const slack = 4 * time.Hour
	start := wallOf(t.In(s.loc)).Add(-slack).Truncate(time.Minute)
	limit := start.Add(horizon)
	var best time.Time
	for w := s.nextWall(start); !w.IsZero() && w.Before(limit); w = s.nextWall(w.Add(time.Minute)) {
		if !best.IsZero() && w.Sub(wallOf(best.In(s.loc))) > slack {
			break
		}
		for _, u := range s.instants(w) {
			if u.After(t) && (best.IsZero() || u.Before(best)) {
				best = u
			}
		}
	}
	return best
}

// instants returns when the wall time w fires, by the DST rules of Next.
func (s *Schedule) instants(w time.Time) []time.Time {
	var out []time.Time
	seen := map[int]bool{}
	for _, probe := range []time.Duration{-14 * time.Hour, 0, 14 * time.Hour} {
		_, off := w.Add(probe).In(s.loc).Zone()
		if seen[off] {
			continue
		}
		seen[off] = true
		u := w.Add(-time.Duration(off) * time.Second)
		if wallOf(u.In(s.loc)).Equal(w) {
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		// w falls in a gap: a fixed-time job fires when the gap ends.
		if s.wildcard {
			return nil
		}
		return []time.Time{s.gapEnd(w)}
	}
	if len(out) > 1 && !s.wildcard {
		first := out[0]
		for _, u := range out[1:] {
			if u.Before(first) {
				first = u
			}
		}
		return []time.Time{first}
	}
	return out
}

// gapEnd finds the first instant whose wall time is at or after w, for a w
// the clock jumped over.
func (s *Schedule) gapEnd(w time.Time) time.Time {
	lo, hi := w.Add(-15*time.Hour), w.Add(15*time.Hour) // as instants: wall(lo) < w <= wall(hi)
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2).Truncate(time.Second)
		if wallOf(mid.In(s.loc)).Before(w) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// wallOf returns t's wall-clock reading as a naive UTC time.
func wallOf(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, sec := t.Clock()
	return time.Date(y, mo, d, h, mi, sec, 0, time.UTC)
}

// nextWall returns the first wall time at or after w (a naive UTC time,
// whole minutes) that matches the fields, or zero beyond the horizon.
func (s *Schedule) nextWall(w time.Time) time.Time {
	if w.Second() != 0 || w.Nanosecond() != 0 {
		w = w.Truncate(time.Minute).Add(time.Minute)
	}
	end := w.Add(horizon)
	for w.Before(end) {
		if s.month&(1<<uint(w.Month())) == 0 {
			w = time.Date(w.Year(), w.Month()+1, 1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if !s.dayMatches(w) {
			w = time.Date(w.Year(), w.Month(), w.Day()+1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if s.hour&(1<<uint(w.Hour())) == 0 {
			w = time.Date(w.Year(), w.Month(), w.Day(), w.Hour()+1, 0, 0, 0, time.UTC)
			continue
		}
		if s.minute&(1<<uint(w.Minute())) == 0 {
			// Jump straight to the next matching minute of this hour, if any.
			rest := s.minute >> uint(w.Minute())
			if rest == 0 {
				w = time.Date(w.Year(), w.Month(), w.Day(), w.Hour()+1, 0, 0, 0, time.UTC)
			} else {
				w = w.Add(time.Duration(bits.TrailingZeros64(rest)) * time.Minute)
			}
			continue
		}
		return w
	}
	return time.Time{}
}

func (s *Schedule) dayMatches(w time.Time) bool {
	dom := s.dom&(1<<uint(w.Day())) != 0
	dow := s.dow&(1<<uint(w.Weekday())) != 0
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}

// Missed says whether the schedule was due between last (when the job last
// started) and now without running: it returns the latest such due time and
// how many were missed (counting stops at 1000).
func (s *Schedule) Missed(last, now time.Time) (latest time.Time, count int) {
	for due := s.Next(last); !due.IsZero() && !due.After(now) && count < 1000; due = s.Next(due) {
		latest, count = due, count+1
	}
	return latest, count
}
