package ims

import (
	"testing"
	"time"
)

// The fast paths of Valid, AddDays and Before agree with the time package
// on every day of four centuries, leap years included.
func TestDateArithmeticAgreesWithTime(t *testing.T) {
	for day := time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC); day.Year() < 2401; day = day.AddDate(0, 0, 1) {
		d := DateOf(day)
		if !d.Valid() {
			t.Fatalf("%v not valid", d)
		}
		next := DateOf(day.AddDate(0, 0, 1))
		if got := d.AddDays(1); got != next {
			t.Fatalf("%v + 1 = %v, want %v", d, got, next)
		}
		if !d.Before(next) || next.Before(d) || d.Before(d) {
			t.Fatalf("Before wrong around %v", d)
		}
	}
	for _, bad := range []Date{{2025, 2, 29}, {2100, 2, 29}, {2025, 4, 31}, {2025, 13, 1}, {2025, 0, 1}, {0, 1, 1}, {2025, 1, 0}} {
		if bad.Valid() {
			t.Errorf("%+v valid", bad)
		}
	}
	if got := (Date{2025, 3, 1}).AddDays(-1); got != (Date{2025, 2, 28}) {
		t.Errorf("AddDays(-1) = %v", got)
	}
}
