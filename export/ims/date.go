package ims

import (
	"fmt"
	"time"
)

// Date is a calendar day without a time or zone: Moodle reads IMS dates as
// midnight in the site's own time zone, so MIM never converts them.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf returns the calendar day of t in t's own location (a PostgreSQL date
// scanned by pgx arrives as midnight UTC).
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// ParseDate reads YYYY-MM-DD, four digits, two digits, two digits, and
// nothing else; the day must exist.
func ParseDate(s string) (Date, error) {
	if !dateShape(s) {
		return Date{}, fmt.Errorf("date %q is not YYYY-MM-DD", s)
	}
	y := atoi(s[0:4])
	m := time.Month(atoi(s[5:7]))
	d := atoi(s[8:10])
	if t := time.Date(y, m, d, 0, 0, 0, 0, time.UTC); t.Day() != d || t.Month() != m || y < 1 {
		return Date{}, fmt.Errorf("date %q does not exist", s)
	}
	return Date{y, m, d}, nil
}

// dateShape reports whether s is exactly NNNN-NN-NN in ASCII digits.
func dateShape(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	for i := 0; i < 10; i++ {
		if i == 4 || i == 7 {
			continue
		}
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// IsZero reports whether d is the zero Date, which means "no date".
func (d Date) IsZero() bool { return d == Date{} }

// Valid reports whether d is a day that exists in a four-digit year.
func (d Date) Valid() bool {
	return d.Year >= 1 && d.Year <= 9999 && d.Month >= 1 && d.Month <= 12 && d.Day >= 1 && d.Day <= daysIn(d.Month, d.Year)
}

func daysIn(m time.Month, y int) int {
	switch m {
	case time.February:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// Time returns midnight UTC of d.
func (d Date) Time() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC) }

// AddDays returns the day n days after d (before, if n is negative).
func (d Date) AddDays(n int) Date {
	if n == 1 && d.Valid() { // the writer's case, without the time package
		switch {
		case d.Day < daysIn(d.Month, d.Year):
			d.Day++
		case d.Month < time.December:
			d.Month, d.Day = d.Month+1, 1
		default:
			d.Year, d.Month, d.Day = d.Year+1, time.January, 1
		}
		return d
	}
	return DateOf(d.Time().AddDate(0, 0, n))
}

// Before reports whether d is an earlier day than e.
func (d Date) Before(e Date) bool {
	if d.Year != e.Year {
		return d.Year < e.Year
	}
	if d.Month != e.Month {
		return d.Month < e.Month
	}
	return d.Day < e.Day
}

// String returns YYYY-MM-DD, the only form Moodle reads.
func (d Date) String() string {
	return string(d.appendTo(make([]byte, 0, 10)))
}

func (d Date) appendTo(b []byte) []byte {
	y, m, dd := d.Year, int(d.Month), d.Day
	return append(b,
		byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-',
		byte('0'+dd/10), byte('0'+dd%10))
}
