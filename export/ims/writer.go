// Package ims writes, checks and reads IMS Enterprise 1.1 files for Moodle's
// enrol_imsenterprise, which reads them line by line with regular
// expressions rather than with an XML parser. The Writer streams a file laid
// out the way that reader needs (docs/formats.md §1), Validate re-parses
// a file with encoding/xml and checks the line-level rules, and Scanner reads
// a file the way Moodle does, for the simulator.
package ims

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mimwarehouse/mim/moodle"
)

// Properties is the header of a file. Moodle reads only the target; the
// rest is for the people who open the file.
type Properties struct {
	// Target is the site's imsrestricttarget; required. A site whose setting
	// differs skips the whole file.
	Target string
	// Source is written in every <sourcedid><source>; Moodle ignores it.
	// Empty means "MIM".
	Source string
	// DataSource, Type and DateTime describe the file: e.g. "MIM run 4711",
	// "delta", the generation time. Empty or zero ones are left out.
	DataSource string
	Type       string
	DateTime   time.Time
}

// Person is a Moodle account. MIM writes persons only for sites that create
// accounts from the file; accounts normally come from LDAP or SSO.
type Person struct {
	IDNumber string // user.idnumber, Moodle's lookup key
	Username string // lower case: Moodle logins are
	Auth     string // authentication plugin (ldap, saml2, ...), written explicitly
	Given    string // firstname, required
	Family   string // lastname, required
	Email    string // optional
	// Recstatus is 1 (or 0) to add, 2 to update. 3 (delete) is refused:
	// Moodle would delete the account it finds by username.
	Recstatus int
}

// Group is a Moodle course, written only for sites that opt in: MIM's
// courses already exist, and Moodle creates a course for any group it does
// not know.
type Group struct {
	IDNumber string // course.idnumber
	Short    string // description/short
	Long     string // description/long
	Full     string // description/full
	OrgUnit  string // category for a course Moodle creates; optional
	// Recstatus is 1 (or 0) to add, 2 to update. 3 is refused: Moodle would
	// hide the course.
	Recstatus int
}

// Member is one user with one role in the course of the current membership.
// A user with two roles in a course is two Members.
type Member struct {
	IDNumber string // user.idnumber
	RoleType string // IMS roletype code, "01" to "08", mapped to a Moodle role on the site
	// Active false writes a drop (<status>0</status>, recstatus 3) that
	// Moodle applies only if the site allows unenrolment. A drop must carry
	// the roletype the user was enrolled with, or Moodle skips it.
	Active bool
	// Begin is the first day of the enrolment; LastDay its last day,
	// inclusive. Moodle ends an enrolment at the start of the <end> day, so
	// the Writer writes the day after LastDay. Zero means no limit; a member
	// without dates has its existing dates cleared by Moodle.
	Begin   Date
	LastDay Date
	// Cohort puts an active member into the course group of that name
	// (created by Moodle if missing, never removed by a later file). Not
	// written for drops.
	Cohort string
}

// Stats counts what a Writer wrote.
type Stats struct {
	Persons, Groups, Memberships int
	Members, Active, Drops       int
	Bytes                        int64
}

type state int

const (
	stStart state = iota
	stProperties
	stPersons
	stGroups
	stMembership // inside <membership>
	stMemberships
	stClosed
)

type memberKey struct{ id, role string }

// Writer streams an IMS Enterprise file: properties first, then persons,
// groups and memberships, one element per line with every closing tag of a
// top-level element on a line of its own, and an explicit <status> on every
// role. A value it refuses returns a *FieldError and writes nothing, so the
// caller may skip the record and go on; an error from the underlying
// io.Writer is final.
type Writer struct {
	w       io.Writer
	buf     []byte
	err     error // sticky I/O error
	st      state
	source  string
	course  string
	courses map[string]struct{}
	members map[memberKey]struct{}
	stats   Stats
}

const flushAt = 32 << 10

// NewWriter returns a Writer on w. It writes nothing until WriteProperties,
// and never closes w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{
		w:       w,
		buf:     make([]byte, 0, flushAt+4096),
		courses: make(map[string]struct{}),
		members: make(map[memberKey]struct{}),
	}
}

// Stats returns the counts so far; after Close they are the file's.
func (w *Writer) Stats() Stats { return w.stats }

// WriteProperties writes the XML declaration, the root and <properties>. It
// must be the first call.
func (w *Writer) WriteProperties(p Properties) error {
	if err := w.usable(); err != nil {
		return err
	}
	if w.st != stStart {
		return fmt.Errorf("writing IMS properties: %w: properties are written once, first", ErrOrder)
	}
	rec := "target " + p.Target
	if err := checkID("properties", rec, "target", p.Target); err != nil {
		return err
	}
	w.source = "MIM"
	if p.Source != "" {
		if err := checkID("properties", rec, "source", p.Source); err != nil {
			return err
		}
		w.source = p.Source
	}
	ds, err := checkText("properties", rec, "datasource", p.DataSource)
	if err != nil {
		return err
	}
	typ, err := checkText("properties", rec, "type", p.Type)
	if err != nil {
		return err
	}
	b := append(w.buf, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<enterprise>\n<properties>\n"...)
	if ds != "" {
		b = append(b, "  <datasource>"...)
		b = appendEscaped(b, ds)
		b = append(b, "</datasource>\n"...)
	}
	b = append(b, "  <target>"...)
	b = append(b, p.Target...)
	b = append(b, "</target>\n"...)
	if typ != "" {
		b = append(b, "  <type>"...)
		b = appendEscaped(b, typ)
		b = append(b, "</type>\n"...)
	}
	if !p.DateTime.IsZero() {
		b = append(b, "  <datetime>"...)
		b = p.DateTime.UTC().AppendFormat(b, time.RFC3339)
		b = append(b, "</datetime>\n"...)
	}
	b = append(b, "</properties>\n"...)
	w.buf = b
	w.st = stProperties
	return w.maybeFlush()
}

// WritePerson writes a <person>. Persons come after the properties and
// before any group or membership.
func (w *Writer) WritePerson(p Person) error {
	if err := w.usable(); err != nil {
		return err
	}
	rec := "user " + p.IDNumber
	if w.st != stProperties && w.st != stPersons {
		return fmt.Errorf("writing IMS person (%s): %w: persons go after the properties and before groups and memberships", rec, ErrOrder)
	}
	switch p.Recstatus {
	case 0, 1, 2:
	case 3:
		return fmt.Errorf("writing IMS person (%s): %w", rec, ErrPersonDelete)
	default:
		return &FieldError{"person", rec, "recstatus", fmt.Sprintf("is %d, not 1 (add) or 2 (update)", p.Recstatus)}
	}
	if err := checkID("person", rec, "idnumber", p.IDNumber); err != nil {
		return err
	}
	if err := checkID("person", rec, "username", p.Username); err != nil {
		return err
	}
	if strings.ToLower(p.Username) != p.Username {
		return &FieldError{"person", rec, "username", fmt.Sprintf("%q is not lower case (Moodle logins are)", p.Username)}
	}
	if !isAuthName(p.Auth) {
		return &FieldError{"person", rec, "auth", fmt.Sprintf("%q is not an authentication plugin name (lower case letters, digits, _)", p.Auth)}
	}
	given, err := checkRequiredText("person", rec, "given", p.Given)
	if err != nil {
		return err
	}
	family, err := checkRequiredText("person", rec, "family", p.Family)
	if err != nil {
		return err
	}
	email, err := checkText("person", rec, "email", p.Email)
	if err != nil {
		return err
	}
	// Moodle stores the text as it reads it, entities undecoded: the
	// escaped value is what must fit its column.
	for _, f := range []struct {
		field, column, v string
		width            int
	}{
		{"idnumber", "user.idnumber", p.IDNumber, moodle.UserIDNumberWidth},
		{"username", "user.username", p.Username, moodle.UsernameWidth},
		{"given", "user.firstname", string(appendEscaped(nil, given)), moodle.FirstNameWidth},
		{"family", "user.lastname", string(appendEscaped(nil, family)), moodle.LastNameWidth},
		{"email", "user.email", string(appendEscaped(nil, email)), moodle.EmailWidth},
	} {
		if why := moodle.TooLong(f.column, f.v, f.width); why != "" {
			return &FieldError{"person", rec, f.field, why}
		}
	}
	rs := byte('1')
	if p.Recstatus == 2 {
		rs = '2'
	}
	b := append(w.buf, "<person recstatus=\""...)
	b = append(b, rs)
	b = append(b, "\">\n"...)
	b = w.appendSourcedid(b, "  ", p.IDNumber)
	b = append(b, "  <userid authenticationtype=\""...)
	b = append(b, p.Auth...)
	b = append(b, "\">"...)
	b = append(b, p.Username...)
	b = append(b, "</userid>\n  <name><fn>"...)
	b = appendEscaped(b, given)
	b = append(b, ' ')
	b = appendEscaped(b, family)
	b = append(b, "</fn><n><family>"...)
	b = appendEscaped(b, family)
	b = append(b, "</family><given>"...)
	b = appendEscaped(b, given)
	b = append(b, "</given></n></name>\n"...)
	if email != "" {
		b = append(b, "  <email>"...)
		b = appendEscaped(b, email)
		b = append(b, "</email>\n"...)
	}
	b = append(b, "</person>\n"...)
	w.buf = b
	w.st = stPersons
	w.stats.Persons++
	return w.maybeFlush()
}

// WriteGroup writes a <group> (a course). Groups come after persons and
// before memberships.
func (w *Writer) WriteGroup(g Group) error {
	if err := w.usable(); err != nil {
		return err
	}
	rec := "course " + g.IDNumber
	if w.st != stProperties && w.st != stPersons && w.st != stGroups {
		return fmt.Errorf("writing IMS group (%s): %w: groups go after persons and before memberships", rec, ErrOrder)
	}
	switch g.Recstatus {
	case 0, 1, 2:
	case 3:
		return fmt.Errorf("writing IMS group (%s): %w", rec, ErrGroupDelete)
	default:
		return &FieldError{"group", rec, "recstatus", fmt.Sprintf("is %d, not 1 (add) or 2 (update)", g.Recstatus)}
	}
	if err := checkID("group", rec, "idnumber", g.IDNumber); err != nil {
		return err
	}
	if why := moodle.TooLong("course.idnumber", g.IDNumber, moodle.CourseIDNumberWidth); why != "" {
		return &FieldError{"group", rec, "idnumber", why}
	}
	var texts [4]string
	for i, f := range []struct {
		name, column string
		v            string
		width        int
	}{{"short", "course.shortname", g.Short, moodle.CourseShortNameWidth}, {"long", "course.fullname", g.Long, moodle.CourseFullNameWidth},
		{"full", "course.fullname", g.Full, moodle.CourseFullNameWidth}, {"orgunit", "", g.OrgUnit, 0}} {
		t, err := checkText("group", rec, f.name, f.v)
		if err != nil {
			return err
		}
		if f.width > 0 {
			if why := moodle.TooLong(f.column, string(appendEscaped(nil, t)), f.width); why != "" {
				return &FieldError{"group", rec, f.name, why}
			}
		}
		texts[i] = t
	}
	rs := byte('1')
	if g.Recstatus == 2 {
		rs = '2'
	}
	b := append(w.buf, "<group recstatus=\""...)
	b = append(b, rs)
	b = append(b, "\">\n"...)
	b = w.appendSourcedid(b, "  ", g.IDNumber)
	if texts[0] != "" || texts[1] != "" || texts[2] != "" {
		b = append(b, "  <description>"...)
		for i, tag := range []string{"short", "long", "full"} {
			if texts[i] == "" {
				continue
			}
			b = append(b, '<')
			b = append(b, tag...)
			b = append(b, '>')
			b = appendEscaped(b, texts[i])
			b = append(b, "</"...)
			b = append(b, tag...)
			b = append(b, '>')
		}
		b = append(b, "</description>\n"...)
	}
	if texts[3] != "" {
		b = append(b, "  <org><orgunit>"...)
		b = appendEscaped(b, texts[3])
		b = append(b, "</orgunit></org>\n"...)
	}
	b = append(b, "</group>\n"...)
	w.buf = b
	w.st = stGroups
	w.stats.Groups++
	return w.maybeFlush()
}

// BeginMembership opens the <membership> of one course. Each course has one
// membership per file; its members follow with WriteMember, and
// EndMembership closes it.
func (w *Writer) BeginMembership(courseIDNumber string) error {
	if err := w.usable(); err != nil {
		return err
	}
	rec := "course " + courseIDNumber
	switch w.st {
	case stProperties, stPersons, stGroups, stMemberships:
	case stMembership:
		return fmt.Errorf("writing IMS membership (%s): %w: membership of course %s is not ended", rec, ErrOrder, w.course)
	default:
		return fmt.Errorf("writing IMS membership (%s): %w: properties come first", rec, ErrOrder)
	}
	if err := checkID("membership", rec, "course idnumber", courseIDNumber); err != nil {
		return err
	}
	if why := moodle.TooLong("course.idnumber", courseIDNumber, moodle.CourseIDNumberWidth); why != "" {
		return &FieldError{"membership", rec, "course idnumber", why}
	}
	if _, dup := w.courses[courseIDNumber]; dup {
		return fmt.Errorf("writing IMS membership (%s): %w: the course already has a membership in this file", rec, ErrDuplicate)
	}
	w.courses[courseIDNumber] = struct{}{}
	b := append(w.buf, "<membership>\n"...)
	w.buf = w.appendSourcedid(b, "  ", courseIDNumber)
	w.course = courseIDNumber
	clear(w.members)
	w.st = stMembership
	w.stats.Memberships++
	return w.maybeFlush()
}

// WriteMember writes one <member> of the current membership.
func (w *Writer) WriteMember(m Member) error {
	if err := w.usable(); err != nil {
		return err
	}
	if w.st != stMembership {
		return fmt.Errorf("writing IMS member (user %s): %w: no membership is open", m.IDNumber, ErrOrder)
	}
	if err := checkID("member", "", "idnumber", m.IDNumber); err != nil {
		err.(*FieldError).Record = w.memberRecord(m)
		return err
	}
	if why := moodle.TooLong("user.idnumber", m.IDNumber, moodle.UserIDNumberWidth); why != "" {
		return &FieldError{"member", w.memberRecord(m), "idnumber", why}
	}
	if !isRoleType(m.RoleType) {
		return &FieldError{"member", w.memberRecord(m), "roletype", fmt.Sprintf("%q is not an IMS roletype code (01 to 08)", m.RoleType)}
	}
	if !m.Begin.IsZero() && !m.Begin.Valid() {
		return &FieldError{"member", w.memberRecord(m), "begin", fmt.Sprintf("%+v is not a calendar day", m.Begin)}
	}
	var end Date
	if !m.LastDay.IsZero() {
		if !m.LastDay.Valid() || m.LastDay.Year >= 9999 {
			return &FieldError{"member", w.memberRecord(m), "last day", fmt.Sprintf("%+v is not a calendar day", m.LastDay)}
		}
		if !m.Begin.IsZero() && m.LastDay.Before(m.Begin) {
			return &FieldError{"member", w.memberRecord(m), "last day", fmt.Sprintf("%s is before the first day %s", m.LastDay, m.Begin)}
		}
		end = m.LastDay.AddDays(1)
	}
	var cohort string
	if m.Active && m.Cohort != "" {
		var err error
		if cohort, err = checkText("member", "", "cohort", m.Cohort); err != nil {
			err.(*FieldError).Record = w.memberRecord(m)
			return err
		}
	}
	k := memberKey{m.IDNumber, m.RoleType}
	if _, dup := w.members[k]; dup {
		return fmt.Errorf("writing IMS member (%s): %w: the user already has this role in this membership", w.memberRecord(m), ErrDuplicate)
	}
	w.members[k] = struct{}{}

	b := append(w.buf, "  <member>\n"...)
	b = w.appendSourcedid(b, "    ", m.IDNumber)
	b = append(b, "    <idtype>1</idtype>\n    <role roletype=\""...)
	b = append(b, m.RoleType...)
	if m.Active {
		b = append(b, "\">\n      <status>1</status>\n"...)
	} else {
		b = append(b, "\" recstatus=\"3\">\n      <status>0</status>\n"...)
	}
	if !m.Begin.IsZero() || !end.IsZero() {
		b = append(b, "      <timeframe>"...)
		if !m.Begin.IsZero() {
			b = append(b, "<begin restrict=\"1\">"...)
			b = m.Begin.appendTo(b)
			b = append(b, "</begin>"...)
		}
		if !end.IsZero() {
			b = append(b, "<end restrict=\"1\">"...)
			b = end.appendTo(b)
			b = append(b, "</end>"...)
		}
		b = append(b, "</timeframe>\n"...)
	}
	if cohort != "" {
		b = append(b, "      <extension><cohort>"...)
		b = appendEscaped(b, cohort)
		b = append(b, "</cohort></extension>\n"...)
	}
	b = append(b, "    </role>\n  </member>\n"...)
	w.buf = b
	w.stats.Members++
	if m.Active {
		w.stats.Active++
	} else {
		w.stats.Drops++
	}
	return w.maybeFlush()
}

// EndMembership closes the current membership.
func (w *Writer) EndMembership() error {
	if err := w.usable(); err != nil {
		return err
	}
	if w.st != stMembership {
		return fmt.Errorf("ending IMS membership: %w: no membership is open", ErrOrder)
	}
	w.buf = append(w.buf, "</membership>\n"...)
	w.st = stMemberships
	return w.maybeFlush()
}

// WriteMembership writes one course's whole membership.
func (w *Writer) WriteMembership(courseIDNumber string, members []Member) error {
	if err := w.BeginMembership(courseIDNumber); err != nil {
		return err
	}
	for _, m := range members {
		if err := w.WriteMember(m); err != nil {
			return err
		}
	}
	return w.EndMembership()
}

// Close ends the document and flushes it. It does not close the underlying
// io.Writer. A membership left open is an error: the file would end in the
// middle of a course.
func (w *Writer) Close() error {
	if err := w.usable(); err != nil {
		return err
	}
	switch w.st {
	case stStart:
		w.err = ErrClosed
		return fmt.Errorf("closing IMS file: %w: no properties were written", ErrOrder)
	case stMembership:
		w.err = ErrClosed
		return fmt.Errorf("closing IMS file: %w: membership of course %s is not ended", ErrOrder, w.course)
	}
	w.buf = append(w.buf, "</enterprise>\n"...)
	if err := w.flush(); err != nil {
		return err
	}
	w.st = stClosed
	w.err = ErrClosed
	return nil
}

func (w *Writer) usable() error {
	if w.err != nil {
		return w.err
	}
	return nil
}

func (w *Writer) memberRecord(m Member) string {
	return "course " + w.course + ", user " + m.IDNumber + ", role " + m.RoleType
}

func (w *Writer) appendSourcedid(b []byte, indent, id string) []byte {
	b = append(b, indent...)
	b = append(b, "<sourcedid><source>"...)
	b = append(b, w.source...)
	b = append(b, "</source><id>"...)
	b = append(b, id...)
	return append(b, "</id></sourcedid>\n"...)
}

func (w *Writer) maybeFlush() error {
	if len(w.buf) < flushAt {
		return nil
	}
	return w.flush()
}

func (w *Writer) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.w.Write(w.buf)
	w.stats.Bytes += int64(n)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	w.buf = w.buf[:0]
	if err != nil {
		w.err = fmt.Errorf("writing IMS file: %w", err)
		return w.err
	}
	return nil
}

// checkID accepts an identifier Moodle compares exactly: non-empty, no
// surrounding space (Moodle trims it, so the file and MIM's state would
// disagree), and none of & < > (Moodle stores entities undecoded, so the
// escaped value would never match).
func checkID(elem, rec, field, s string) error {
	if s == "" {
		return &FieldError{elem, rec, field, "is empty"}
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		return &FieldError{elem, rec, field, fmt.Sprintf("%q has surrounding spaces", s)}
	}
	hi := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return &FieldError{elem, rec, field, fmt.Sprintf("%q contains a control character", s)}
		case c == '&' || c == '<' || c == '>':
			return &FieldError{elem, rec, field, fmt.Sprintf("%q contains %q, which Moodle would store entity-encoded and never match", s, c)}
		case c >= 0x80:
			hi = true
		}
	}
	if hi {
		if msg := badUnicode(s); msg != "" {
			return &FieldError{elem, rec, field, fmt.Sprintf("%q %s", s, msg)}
		}
	}
	return nil
}

// checkText accepts free text (names, descriptions) and returns it trimmed,
// as Moodle would store it. & < > are escaped when written.
func checkText(elem, rec, field, s string) (string, error) {
	s = strings.TrimSpace(s)
	hi := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return "", &FieldError{elem, rec, field, fmt.Sprintf("%q contains a control character (line breaks included)", s)}
		case c >= 0x80:
			hi = true
		}
	}
	if hi {
		if msg := badUnicode(s); msg != "" {
			return "", &FieldError{elem, rec, field, fmt.Sprintf("%q %s", s, msg)}
		}
	}
	return s, nil
}

func checkRequiredText(elem, rec, field, s string) (string, error) {
	t, err := checkText(elem, rec, field, s)
	if err == nil && t == "" {
		err = &FieldError{elem, rec, field, "is empty (Moodle reads it only when non-empty)"}
	}
	return t, err
}

// badUnicode says why s cannot appear in an XML 1.0 document, or "".
func badUnicode(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, r := range s {
		switch {
		case r == 0xFFFE || r == 0xFFFF:
			return fmt.Sprintf("contains U+%04X, which XML does not allow", r)
		case r >= 0x80 && r <= 0x9f:
			// Legal XML, but always a decoding accident (Windows-1252 read as Latin-1).
			return fmt.Sprintf("contains the control character U+%04X", r)
		}
	}
	return ""
}

// appendEscaped escapes the three characters XML requires in element
// content. Quotes stay literal so that O'Neill arrives intact: Moodle does
// not decode entities.
func appendEscaped(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		default:
			continue
		}
		b = append(b, s[last:i]...)
		b = append(b, esc...)
		last = i + 1
	}
	return append(b, s[last:]...)
}

func isRoleType(s string) bool {
	return len(s) == 2 && s[0] == '0' && s[1] >= '1' && s[1] <= '8'
}

func isAuthName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// IsFieldError reports whether err is a value the Writer refused (the
// caller may skip that record), as opposed to an order or I/O error.
func IsFieldError(err error) bool {
	var fe *FieldError
	return errors.As(err, &fe)
}
