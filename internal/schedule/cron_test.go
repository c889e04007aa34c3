package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func london(t *testing.T) *time.Location {
	t.Helper()
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatalf("loading Europe/London: %v", err)
	}
	return l
}

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

// sequence returns the n times after from.
func sequence(s *Schedule, from time.Time, n int) []string {
	var out []string
	t := from
	for range n {
		t = s.Next(t)
		out = append(out, t.UTC().Format("2006-01-02 15:04"))
	}
	return out
}

func TestNextDSTEuropeLondon(t *testing.T) {
	lon := london(t)
	cases := []struct {
		name, expr, from string
		want             []string // UTC
	}{
		{
			// 2026-03-29: 01:00 GMT becomes 02:00 BST. 01:30 does not exist
			// that night; a fixed-time job runs when the gap ends (01:00 UTC).
			name: "fixed time in the spring gap runs at the gap's end",
			expr: "CRON_TZ=Europe/London 30 1 * * *", from: "2026-03-27 12:00",
			want: []string{"2026-03-28 01:30", "2026-03-29 01:00", "2026-03-30 00:30"},
		},
		{
			// 2026-10-25: 02:00 BST becomes 01:00 GMT, so 01:30 happens twice
			// (00:30 and 01:30 UTC); a fixed-time job runs once.
			name: "fixed time in the autumn overlap runs once",
			expr: "CRON_TZ=Europe/London 30 1 * * *", from: "2026-10-23 12:00",
			want: []string{"2026-10-24 00:30", "2026-10-25 00:30", "2026-10-26 01:30"},
		},
		{
			name: "the nightly schedule moves with the clock",
			expr: "CRON_TZ=Europe/London 15 0 * * *", from: "2026-03-27 12:00",
			// 00:15 on the 29th is still GMT; from the 30th it is BST.
			want: []string{"2026-03-28 00:15", "2026-03-29 00:15", "2026-03-29 23:15"},
		},
		{
			name: "the nightly schedule over the autumn change",
			expr: "CRON_TZ=Europe/London 15 0 * * *", from: "2026-10-23 12:00",
			want: []string{"2026-10-23 23:15", "2026-10-24 23:15", "2026-10-26 00:15"},
		},
		{
			// Wildcard jobs follow the clock: no run in the gap...
			name: "every 30 minutes over the spring gap",
			expr: "CRON_TZ=Europe/London */30 * * * *", from: "2026-03-29 00:00",
			want: []string{"2026-03-29 00:30", "2026-03-29 01:00", "2026-03-29 01:30", "2026-03-29 02:00"},
		},
		{
			// ... and both passes through the repeated hour, in real-time order.
			name: "every 30 minutes over the autumn overlap",
			expr: "CRON_TZ=Europe/London */30 * * * *", from: "2026-10-24 23:00",
			want: []string{"2026-10-24 23:30", "2026-10-25 00:00", "2026-10-25 00:30", "2026-10-25 01:00", "2026-10-25 01:30", "2026-10-25 02:00"},
		},
		{
			name: "groups schedule: weekdays 07:00-19:30 local",
			expr: "CRON_TZ=Europe/London */30 7-19 * * 1-5", from: "2026-07-03 18:10", // a Friday, BST
			want: []string{"2026-07-03 18:30", "2026-07-06 06:00", "2026-07-06 06:30"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse(c.expr, time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			if s.Location().String() != lon.String() {
				t.Fatalf("location %s, want Europe/London", s.Location())
			}
			got := sequence(s, utc(c.from), len(c.want))
			if strings.Join(got, ", ") != strings.Join(c.want, ", ") {
				t.Errorf("after %s UTC:\n got %s\nwant %s", c.from, strings.Join(got, ", "), strings.Join(c.want, ", "))
			}
		})
	}
}

func TestNextFromInsideTheRepeatedHour(t *testing.T) {
	// At 01:10 GMT on 2026-10-25 (the second 01:10 of the night) a
	// fixed-time 01:30 job has already run at 01:30 BST: next is tomorrow.
	s := MustParse("CRON_TZ=Europe/London 30 1 * * *", nil)
	if got := s.Next(utc("2026-10-25 01:10")).UTC().Format("2006-01-02 15:04"); got != "2026-10-26 01:30" {
		t.Errorf("fixed job: got %s, want 2026-10-26 01:30", got)
	}
	// A wildcard job runs at the second 01:30 as well.
	w := MustParse("CRON_TZ=Europe/London 30 * * * *", nil)
	if got := w.Next(utc("2026-10-25 01:10")).UTC().Format("2006-01-02 15:04"); got != "2026-10-25 01:30" {
		t.Errorf("wildcard job: got %s, want 2026-10-25 01:30", got)
	}
}

func TestFields(t *testing.T) {
	cases := []struct {
		expr, from string
		want       []string
	}{
		{"0 0 * * *", "2026-01-01 00:00", []string{"2026-01-02 00:00", "2026-01-03 00:00"}},
		{"@daily", "2026-01-01 00:00", []string{"2026-01-02 00:00", "2026-01-03 00:00"}},
		{"@hourly", "2026-01-01 00:30", []string{"2026-01-01 01:00", "2026-01-01 02:00"}},
		{"5,35 */6 * * *", "2026-01-01 00:00", []string{"2026-01-01 00:05", "2026-01-01 00:35", "2026-01-01 06:05"}},
		{"0 9-17/4 * * *", "2026-01-01 00:00", []string{"2026-01-01 09:00", "2026-01-01 13:00", "2026-01-01 17:00", "2026-01-02 09:00"}},
		{"0 12 * jan,jul mon", "2026-01-01 00:00", []string{"2026-01-05 12:00", "2026-01-12 12:00"}},
		{"0 0 29 feb *", "2026-01-01 00:00", []string{"2028-02-29 00:00", "2032-02-29 00:00"}},
		{"0 0 * * 7", "2026-01-01 00:00", []string{"2026-01-04 00:00"}}, // 7 is Sunday
		{"0 0 * * sun", "2026-01-01 00:00", []string{"2026-01-04 00:00"}},
		// Both day fields restricted: either matches (the 13th, or a Friday).
		{"0 0 13 * 5", "2026-01-01 00:00", []string{"2026-01-02 00:00", "2026-01-09 00:00", "2026-01-13 00:00", "2026-01-16 00:00"}},
		// A day field starting with '*' (even a step) makes both fields apply
		// together (Vixie): odd days that are Mondays.
		{"0 0 */2 * 1", "2026-01-01 00:00", []string{"2026-01-05 00:00", "2026-01-19 00:00"}},
		{"10/20 0 1 1 *", "2026-01-01 00:00", []string{"2026-01-01 00:10", "2026-01-01 00:30", "2026-01-01 00:50", "2027-01-01 00:10"}},
	}
	for _, c := range cases {
		s, err := Parse(c.expr, time.UTC)
		if err != nil {
			t.Errorf("%q: %v", c.expr, err)
			continue
		}
		if got := sequence(s, utc(c.from), len(c.want)); strings.Join(got, ", ") != strings.Join(c.want, ", ") {
			t.Errorf("%q after %s:\n got %s\nwant %s", c.expr, c.from, strings.Join(got, ", "), strings.Join(c.want, ", "))
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		"":                               "empty",
		"* * * *":                        "has 4 fields",
		"60 * * * *":                     "minute \"60\"",
		"* 24 * * *":                     "hour \"24\"",
		"* * 0 * *":                      "day of month \"0\"",
		"* * * 13 *":                     "month \"13\"",
		"* * * * 8":                      "day of week \"8\"",
		"5-1 * * * *":                    "runs backwards",
		"*/0 * * * *":                    "step \"0\"",
		"1,,2 * * * *":                   "empty list item",
		"0 0 30 feb *":                   "never matches",
		"CRON_TZ=Mars/Olympus 0 0 * * *": "unknown time zone",
		"@fortnightly":                   "unknown descriptor",
		"0 0 * * funday":                 "day of week \"funday\"",
	}
	for expr, want := range cases {
		_, err := Parse(expr, time.UTC)
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v; want a *SyntaxError containing %q", expr, err, want)
		}
	}
}

func TestDefaultLocation(t *testing.T) {
	lon := london(t)
	s := MustParse("0 12 * * *", lon)
	if got := s.Next(utc("2026-07-01 00:00")).UTC().Format("2006-01-02 15:04"); got != "2026-07-01 11:00" {
		t.Errorf("noon in London in July: got %s UTC, want 11:00", got)
	}
	tz := MustParse("TZ=UTC 0 12 * * *", lon)
	if got := tz.Next(utc("2026-07-01 00:00")).UTC().Format("2006-01-02 15:04"); got != "2026-07-01 12:00" {
		t.Errorf("TZ=UTC overrides the default: got %s", got)
	}
}

func TestMissed(t *testing.T) {
	s := MustParse("CRON_TZ=Europe/London 15 0 * * *", nil)
	last := utc("2026-01-10 00:15")
	latest, n := s.Missed(last, utc("2026-01-13 09:00"))
	if n != 3 || latest.UTC().Format("2006-01-02 15:04") != "2026-01-13 00:15" {
		t.Errorf("Missed = %s, %d; want 2026-01-13 00:15, 3", latest.UTC(), n)
	}
	if _, n := s.Missed(last, utc("2026-01-11 00:10")); n != 0 {
		t.Errorf("nothing was due yet, but Missed counts %d", n)
	}
}

func BenchmarkNext(b *testing.B) {
	s := MustParse("CRON_TZ=Europe/London */30 7-19 * * 1-5", nil)
	t := utc("2026-01-01 00:00")
	for b.Loop() {
		t = s.Next(t)
	}
}
