package moodle

import (
	"fmt"
	"unicode/utf8"
)

// Column widths of Moodle 4.5's tables (lib/db/install.xml), in
// characters. A longer value is refused by Moodle's database (or cut by a
// lenient one, so the record never matches again); MIM refuses it first,
// record by record, with the record named.
const (
	CourseIDNumberWidth   = 100 // course.idnumber
	CourseShortNameWidth  = 255 // course.shortname
	CourseFullNameWidth   = 254 // course.fullname
	UsernameWidth         = 100 // user.username
	UserIDNumberWidth     = 255 // user.idnumber
	FirstNameWidth        = 100 // user.firstname
	LastNameWidth         = 100 // user.lastname
	EmailWidth            = 100 // user.email
	GroupNameWidth        = 254 // groups.name
	GroupIDNumberWidth    = 100 // groups.idnumber
	GroupingNameWidth     = 255 // groupings.name
	GroupingIDNumberWidth = 100 // groupings.idnumber
)

// TooLong says why value does not fit Moodle's column of width characters
// ("" when it fits).
func TooLong(column, value string, width int) string {
	if n := utf8.RuneCountInString(value); n > width {
		return fmt.Sprintf("is %d characters, longer than Moodle's %s (%d)", n, column, width)
	}
	return ""
}
