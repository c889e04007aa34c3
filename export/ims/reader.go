package ims

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// Element is one top-level element as Moodle's reader sees it: a
// *PropertiesElement, *PersonElement, *GroupElement or *MembershipElement.
type Element interface{ element() }

// PropertiesElement is a <properties> element. Moodle reads only its targets.
type PropertiesElement struct {
	Raw string // the element's text as found
}

// PersonElement is a <person> as Moodle reads it: the first occurrence of
// each field, trimmed, entities left undecoded.
type PersonElement struct {
	IDNumber  string
	Username  string
	Auth      string // "" when the file names none (Moodle then uses the site's first auth plugin)
	Given     string
	Family    string
	Email     string
	URL       string
	City      string
	Country   string
	Recstatus int // 0 unspecified, 1 add, 2 update, 3 delete
}

// GroupElement is a <group> as Moodle reads it.
type GroupElement struct {
	IDNumber  string
	Short     string
	Long      string
	Full      string
	OrgUnit   string
	Recstatus int
}

// MembershipElement is a <membership>: one course and its members in file order.
type MembershipElement struct {
	CourseIDNumber string // "" when Moodle would find none
	Members        []MemberElement
}

// MemberElement is one <member> as Moodle reads it.
type MemberElement struct {
	IDNumber  string // "" when the member has no sourcedid id (Moodle skips it)
	RoleType  string // "" when the roletype is not the first attribute of <role>
	Status    string // raw <status> text; "" when missing
	Recstatus int    // of the <role>; 3 forces a drop
	// Begin and End are read only when written <begin restrict="1">YYYY-MM-DD</begin>
	// (and likewise <end>); zero otherwise, which Moodle stores as "no limit".
	// End is the first day the user is no longer enrolled.
	Begin, End Date
	Cohort     string // course group to join, "" for none
}

// Enrol reports whether Moodle treats the member as an enrolment (status 1
// and no recstatus 3); anything else is a drop.
func (m MemberElement) Enrol() bool {
	return m.Recstatus != 3 && phpIntval(m.Status) == 1
}

func (*PropertiesElement) element() {}
func (*PersonElement) element()     {}
func (*GroupElement) element()      {}
func (*MembershipElement) element() {}

// HasTarget reports whether Moodle, configured with imsrestricttarget =
// target, would go on reading the file after these properties: some
// <target> must hold exactly target (letters in any case, no spaces).
func (p *PropertiesElement) HasTarget(target string) bool {
	return strings.Contains(asciiLower(p.Raw), "<target>"+asciiLower(target)+"</target>")
}

// Targets lists the <target> values, trimmed.
func (p *PropertiesElement) Targets() []string {
	var out []string
	lower := asciiLower(p.Raw)
	for _, m := range reTarget.FindAllStringSubmatchIndex(lower, -1) {
		out = append(out, strings.TrimSpace(p.Raw[m[2]:m[3]]))
	}
	return out
}

// Moodle's patterns, written anew. PHP's /i without /u folds ASCII letters
// only, so the patterns run case-sensitively on an ASCII-lower-cased copy
// of the text (same byte offsets) and the values are cut from the original:
// this is both faithful and lets Go's regexp skip ahead on literal prefixes.
// "." matches newlines, quantifiers are lazy, the first match wins.
var (
	reTarget     = regexp.MustCompile(`(?s)<target>(.*?)</target>`)
	reSourcedid  = regexp.MustCompile(`(?s)<sourcedid>.*?<id>(.+?)</id>.*?</sourcedid>`)
	reGiven      = regexp.MustCompile(`(?s)<name>.*?<n>.*?<given>(.+?)</given>.*?</n>.*?</name>`)
	reFamily     = regexp.MustCompile(`(?s)<name>.*?<n>.*?<family>(.+?)</family>.*?</n>.*?</name>`)
	reUserid     = regexp.MustCompile(`(?s)<userid.*?>(.*?)</userid>`)
	reAuth       = regexp.MustCompile(`(?s)<userid\s+authenticationtype\s*=\s*"(.+?)">`)
	reEmail      = regexp.MustCompile(`(?s)<email>(.*?)</email>`)
	reURL        = regexp.MustCompile(`(?s)<url>(.*?)</url>`)
	reLocality   = regexp.MustCompile(`(?s)<adr>.*?<locality>(.+?)</locality>.*?</adr>`)
	reCountry    = regexp.MustCompile(`(?s)<adr>.*?<country>(.+?)</country>.*?</adr>`)
	reShort      = regexp.MustCompile(`(?s)<description>.*?<short>(.*?)</short>.*?</description>`)
	reLong       = regexp.MustCompile(`(?s)<description>.*?<long>(.*?)</long>.*?</description>`)
	reFull       = regexp.MustCompile(`(?s)<description>.*?<full>(.*?)</full>.*?</description>`)
	reOrgUnit    = regexp.MustCompile(`(?s)<org>.*?<orgunit>(.*?)</orgunit>.*?</org>`)
	reRoleType   = regexp.MustCompile(`(?s)<role\s+roletype=["'](.+?)["'].*?>`)
	reStatus     = regexp.MustCompile(`(?s)<role\b.*?<status>(.+?)</status>.*?</role>`)
	reTimeframe  = regexp.MustCompile(`(?s)<role\b.*?<timeframe>(.+?)</timeframe>.*?</role>`)
	reBegin      = regexp.MustCompile(`(?s)<begin\s+restrict="1">(\d\d\d\d)-(\d\d)-(\d\d)</begin>`)
	reEnd        = regexp.MustCompile(`(?s)<end\s+restrict="1">(\d\d\d\d)-(\d\d)-(\d\d)</end>`)
	reCohort     = regexp.MustCompile(`(?s)<role\b.*?<extension>.*?<cohort>(.+?)</cohort>.*?</extension>.*?</role>`)
	recstatusRes = map[string]*regexp.Regexp{}
)

// needs is a literal each pattern's matches contain.
var needs = map[*regexp.Regexp]string{
	reSourcedid: "</sourcedid>", reGiven: "</given>", reFamily: "</family>", reUserid: "</userid>",
	reAuth: "authenticationtype", reEmail: "</email>", reURL: "</url>", reLocality: "</locality>",
	reCountry: "</country>", reShort: "</short>", reLong: "</long>", reFull: "</full>",
	reOrgUnit: "</orgunit>", reRoleType: "roletype", reStatus: "</status>", reTimeframe: "</timeframe>",
	reCohort: "</cohort>",
}

// The order in which Moodle looks for a complete element after each line.
var scanOrder = []string{"group", "person", "membership", "comments", "properties"}

func init() {
	for _, tag := range []string{"person", "group", "role"} {
		recstatusRes[tag] = regexp.MustCompile(`(?s)<` + tag + `\b[^>]*recstatus\s*=\s*["'](\d)["']`)
	}
}

// text is an element's text with its ASCII-lower-cased twin.
type text struct{ orig, lower string }

// first returns the trimmed first capture of re, or "".
func (t text) first(re *regexp.Regexp) string {
	// A pattern cannot match text that lacks its literal closing tag;
	// checking that first spares the backtracker most misses.
	if need := needs[re]; need != "" && !strings.Contains(t.lower, need) {
		return ""
	}
	if m := re.FindStringSubmatchIndex(t.lower); m != nil && m[2] >= 0 {
		return strings.TrimSpace(t.orig[m[2]:m[3]])
	}
	return ""
}

func (t text) sub(from, to int) text { return text{t.orig[from:to], t.lower[from:to]} }

// asciiLower lower-cases A-Z only, keeping every byte offset.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func asciiLowerBytes(b []byte) {
	for j, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[j] = c + 'a' - 'A'
		}
	}
}

// Scanner reads an IMS file the way Moodle's enrol_imsenterprise does: line
// by line into a buffer; whenever the line just read contains the closing
// tag of a group, person, membership, comments or properties element, the
// first complete element of that kind in the buffer is cut out (in that
// order of kinds) and read with regular expressions. Entities are not
// decoded, comments and CDATA are not understood, and nothing is validated.
// <comments> elements are dropped, as Moodle drops them.
//
// The simulator's IMS "cron" uses it to apply a file element by element, as
// Moodle does (non-transactionally, stopping after properties whose target
// does not match).
type Scanner struct {
	br     *bufio.Reader
	cache  []byte
	lcache []byte // cache, ASCII-lower-cased
	cur    string // the line just read, lower-cased
	line   int
	elem   Element
	err    error
	eof    bool
}

// NewScanner returns a Scanner reading r.
func NewScanner(r io.Reader) *Scanner {
	return &Scanner{br: bufio.NewReaderSize(r, 64<<10)}
}

// Scan advances to the next element. It returns false at the end of the
// input or on a read error (see Err).
func (s *Scanner) Scan() bool {
	s.elem = nil
	for {
		if s.cur != "" {
			if e := s.nextFromCache(); e != nil {
				s.elem = e
				return true
			}
		}
		if s.eof || s.err != nil {
			return false
		}
		line, err := s.br.ReadBytes('\n')
		if err == io.EOF {
			s.eof = true
		} else if err != nil {
			s.err = fmt.Errorf("reading IMS file at line %d: %w", s.line+1, err)
			return false
		}
		if len(line) == 0 && s.eof {
			return false
		}
		s.line++
		s.cache = append(s.cache, line...)
		n := len(s.lcache)
		s.lcache = append(s.lcache, line...)
		asciiLowerBytes(s.lcache[n:])
		s.cur = string(s.lcache[n:])
	}
}

// Element returns the element Scan found.
func (s *Scanner) Element() Element { return s.elem }

// Line returns the number of the line whose reading completed the element.
func (s *Scanner) Line() int { return s.line }

// Err returns the read error that stopped Scan, if any.
func (s *Scanner) Err() error { return s.err }

func (s *Scanner) nextFromCache() Element {
	for _, tag := range scanOrder {
		if !strings.Contains(s.cur, "</"+tag+">") {
			continue
		}
		loc := findElement(s.lcache, tag)
		if loc == nil {
			continue
		}
		t := text{string(s.cache[loc[0]:loc[1]]), string(s.lcache[loc[0]:loc[1]])}
		// Remove the element and trim the buffer, as Moodle does.
		s.cache = trimCut(s.cache, loc)
		s.lcache = trimCut(s.lcache, loc)
		switch tag {
		case "group":
			return readGroup(t)
		case "person":
			return readPerson(t)
		case "membership":
			return readMembership(t)
		case "properties":
			return &PropertiesElement{Raw: t.orig}
		case "comments":
			// Moodle removes comments without reading them; look again.
			return s.nextFromCache()
		}
	}
	s.cur = ""
	return nil
}

// findElement finds what Moodle's `{<tag\b.*?>.*?</tag>}is` matches first in
// the lower-cased buffer b, with string search instead of a regular
// expression (Go's backtracker clears a bitmap the size of the whole buffer
// on every call). The match starts at the first "<tag" followed by a
// non-word byte; it exists only if a "</tag>" starts after the first ">"
// that follows, and then ends with the first such "</tag>". A later start
// cannot match if this one does not.
func findElement(b []byte, tag string) []int {
	open := "<" + tag
	for from := 0; ; {
		i := bytes.Index(b[from:], []byte(open))
		if i < 0 {
			return nil
		}
		i += from
		k := i + len(open)
		if k < len(b) && isWordByte(b[k]) {
			from = k
			continue
		}
		gt := bytes.IndexByte(b[k:], '>')
		if gt < 0 {
			return nil
		}
		gt += k + 1
		closing := "</" + tag + ">"
		j := bytes.Index(b[gt:], []byte(closing))
		if j < 0 {
			return nil
		}
		return []int{i, gt + j + len(closing)}
	}
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// trimCut removes b[loc[0]:loc[1]] and trims what is left like PHP's trim.
func trimCut(b []byte, loc []int) []byte {
	n := copy(b[loc[0]:], b[loc[1]:])
	b = b[:loc[0]+n]
	t := bytes.TrimLeft(b, " \t\n\r\x00\x0b")
	t = bytes.TrimRight(t, " \t\n\r\x00\x0b")
	if len(t) != len(b) {
		b = append(b[:0], t...)
	}
	return b
}

func recstatus(t text, tag string) int {
	if m := recstatusRes[tag].FindStringSubmatchIndex(t.lower); m != nil {
		return int(t.lower[m[2]] - '0')
	}
	return 0
}

func readPerson(t text) *PersonElement {
	return &PersonElement{
		IDNumber:  t.first(reSourcedid),
		Username:  t.first(reUserid),
		Auth:      t.first(reAuth),
		Given:     t.first(reGiven),
		Family:    t.first(reFamily),
		Email:     t.first(reEmail),
		URL:       t.first(reURL),
		City:      t.first(reLocality),
		Country:   t.first(reCountry),
		Recstatus: recstatus(t, "person"),
	}
}

func readGroup(t text) *GroupElement {
	return &GroupElement{
		IDNumber:  t.first(reSourcedid),
		Short:     t.first(reShort),
		Long:      t.first(reLong),
		Full:      t.first(reFull),
		OrgUnit:   t.first(reOrgUnit),
		Recstatus: recstatus(t, "group"),
	}
}

func readMembership(t text) *MembershipElement {
	ms := &MembershipElement{CourseIDNumber: t.first(reSourcedid)}
	for from := 0; ; {
		i := strings.Index(t.lower[from:], "<member>")
		if i < 0 {
			break
		}
		i += from + len("<member>")
		j := strings.Index(t.lower[i:], "</member>")
		if j < 0 {
			break
		}
		from = i + j + len("</member>")
		body := t.sub(i, i+j)
		m := MemberElement{
			IDNumber:  body.first(reSourcedid),
			RoleType:  body.first(reRoleType),
			Status:    body.first(reStatus),
			Recstatus: recstatus(body, "role"),
			Cohort:    body.first(reCohort),
		}
		if strings.Contains(body.lower, "</timeframe>") {
			if tf := reTimeframe.FindStringSubmatchIndex(body.lower); tf != nil {
				frame := body.lower[tf[2]:tf[3]]
				m.Begin = phpMktime(reBegin.FindStringSubmatch(frame))
				m.End = phpMktime(reEnd.FindStringSubmatch(frame))
			}
		}
		ms.Members = append(ms.Members, m)
	}
	return ms
}

// phpMktime turns a matched year, month and day into a Date the way PHP's
// mktime does: out-of-range months and days roll over (2025-13-01 is
// 2026-01-01).
func phpMktime(m []string) Date {
	if m == nil {
		return Date{}
	}
	return DateOf(time.Date(atoi(m[1]), time.Month(atoi(m[2])), atoi(m[3]), 0, 0, 0, 0, time.UTC))
}

// phpIntval reads leading digits (after optional spaces and sign) as PHP's
// intval does; anything unreadable is 0.
func phpIntval(s string) int {
	s = strings.TrimLeft(s, " \t\n\r\v\f")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	n := 0
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int(s[i]-'0')
		if n > 1<<30 {
			break
		}
	}
	if neg {
		return -n
	}
	return n
}
