package ims

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Summary is what Validate counted in a file.
type Summary struct {
	Targets                      []string
	Persons, Groups, Memberships int
	Members, Active, Drops       int
	Lines                        int
	Bytes                        int64
}

// HasTarget reports whether the file names target the way Moodle compares
// it (letters in any case).
func (s Summary) HasTarget(target string) bool {
	return slices.ContainsFunc(s.Targets, func(t string) bool { return strings.EqualFold(t, target) })
}

// maxLine bounds a line: a longer one means elements were not put on lines
// of their own, which makes Moodle's reader quadratic.
const maxLine = 1 << 20

// Validate checks an IMS file before it is published, in one pass over r:
// encoding/xml re-parses it (well-formed, one <enterprise>, properties
// first with a target, persons, groups, then memberships, every member with
// one role, a roletype 01-08, a <status> of 0 or 1, valid dates, no
// deletion of a person or group, no course or user-role twice) while the
// lines are checked against what Moodle's line reader needs (the XML
// declaration first, no comments, CDATA or DOCTYPE, roletype the first
// attribute of <role>, dates exactly <begin restrict="1">YYYY-MM-DD</begin>,
// <member> without attributes, every closing tag of a top-level element
// alone on its line and written without spaces, </properties> before any
// other element starts). The error, if any, is a *ValidationError listing
// the problems with their line numbers, or a read error.
func Validate(r io.Reader) (Summary, error) {
	pr, pw := io.Pipe()
	type result struct {
		sum  Summary
		errs ValidationError
	}
	done := make(chan result, 1)
	go func() {
		var res result
		checkStructure(pr, &res.sum, &res.errs)
		// Drain, so the line pass never blocks on a parser that stopped early.
		_, _ = io.Copy(io.Discard, pr)
		done <- res
	}()
	var lines ValidationError
	n, nlines, readErr := checkLines(io.TeeReader(r, pw), &lines)
	if readErr != nil {
		pw.CloseWithError(readErr)
	} else {
		pw.Close()
	}
	res := <-done
	if readErr != nil {
		return Summary{}, fmt.Errorf("validating IMS file: %w", readErr)
	}
	sum := res.sum
	sum.Lines, sum.Bytes = nlines, n
	all := &ValidationError{}
	ps := append(lines.Problems, res.errs.Problems...)
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	for _, p := range ps {
		all.add(p.Line, "%s", p.Msg)
	}
	all.Omitted += lines.Omitted + res.errs.Omitted
	if len(all.Problems) > 0 {
		return sum, all
	}
	return sum, nil
}

// ValidateBytes is Validate on a file already in memory.
func ValidateBytes(b []byte) (Summary, error) { return Validate(bytes.NewReader(b)) }

var (
	reCloser    = regexp.MustCompile(`(?i)</\s*(group|person|membership|comments|properties)\b[^>]*>`)
	reRoleOpen  = regexp.MustCompile(`(?i)<role\b[^>]*>`)
	reRoleGood  = regexp.MustCompile(`^<role roletype="(0[1-8])"(?: recstatus="[123]")?>$`)
	reMemberTag = regexp.MustCompile(`(?i)<member\b[^>]*>`)
	rePGOpen    = regexp.MustCompile(`(?i)<(person|group)\b[^>]*>`)
	reUseridTag = regexp.MustCompile(`(?i)<userid\b[^>]*>`)
	reUseridOK  = regexp.MustCompile(`^<userid(?: authenticationtype="[a-z0-9_]+")?>$`)
	reTopOpen   = regexp.MustCompile(`(?i)<(person|group|membership)\b`)
	reCharRef   = regexp.MustCompile(`&(#[0-9]+|#[xX][0-9a-fA-F]+|apos|quot);`)
)

const xmlDecl = `<?xml version="1.0" encoding="UTF-8"?>`

// checkLines applies the rules Moodle's line reader imposes and returns the
// bytes and lines read.
func checkLines(r io.Reader, ve *ValidationError) (int64, int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		n          int64
		line       int
		propsShut  bool
		long       []byte // a line longer than the reader's buffer, up to maxLine
		tooLong    bool
		sawContent bool
	)
	for {
		chunk, err := br.ReadSlice('\n')
		n += int64(len(chunk))
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(chunk) > maxLine {
				tooLong = true
				long = long[:0]
			} else if !tooLong {
				long = append(long, chunk...)
			}
			continue
		}
		if err != nil && err != io.EOF {
			return n, line, err
		}
		if len(chunk) == 0 && long == nil && !tooLong && err == io.EOF {
			break
		}
		line++
		l := chunk
		if long != nil || tooLong {
			l = append(long, chunk...)
			long = nil
			if tooLong || len(l) > maxLine {
				ve.add(line, "line is longer than %d bytes: put every element on its own line (Moodle re-reads its buffer after each closing tag)", maxLine)
				tooLong = false
				if err == io.EOF {
					break
				}
				continue
			}
		}
		s := strings.TrimRight(string(l), "\r\n")
		if line == 1 {
			switch {
			case strings.HasPrefix(s, "\xef\xbb\xbf"):
				ve.add(1, "the file starts with a byte-order mark")
			case s != xmlDecl:
				ve.add(1, "the first line is not %s", xmlDecl)
			}
		}
		if strings.TrimSpace(s) != "" {
			sawContent = true
		}
		checkLine(line, s, ve, &propsShut)
		if err == io.EOF {
			break
		}
	}
	if !sawContent {
		ve.add(0, "the file is empty")
	}
	return n, line, nil
}

func checkLine(line int, s string, ve *ValidationError, propsShut *bool) {
	if !strings.Contains(s, "<") {
		return
	}
	if strings.Contains(s, "<!") {
		switch up := strings.ToUpper(s); {
		case strings.Contains(s, "<!--"):
			ve.add(line, "XML comment: Moodle does not understand comments and processes elements inside them")
		case strings.Contains(s, "<![CDATA["):
			ve.add(line, "CDATA section: Moodle would store the <![CDATA[ text literally")
		case strings.Contains(up, "<!DOCTYPE"), strings.Contains(up, "<!ENTITY"):
			ve.add(line, "DOCTYPE or ENTITY declaration: not allowed")
		}
	}
	lower := asciiLower(s)
	trimmed := strings.TrimSpace(lower)
	if strings.Contains(s, "&") {
		for _, m := range reCharRef.FindAllString(s, -1) {
			ve.add(line, "%s: Moodle does not decode entities and would store it literally; only &amp; &lt; &gt; are written", m)
		}
	}
	if !*propsShut {
		if m := reTopOpen.FindStringSubmatch(s); m != nil {
			ve.add(line, "<%s> starts before </properties> is closed: Moodle checks the target only when it reads </properties>", strings.ToLower(m[1]))
		}
	}
	if hasTopCloser(lower) {
		for _, m := range reCloser.FindAllStringSubmatch(s, -1) {
			tag := strings.ToLower(m[1])
			want := "</" + tag + ">"
			switch {
			case strings.ToLower(m[0]) != want:
				ve.add(line, "closing tag %q: Moodle recognises only %s, without spaces", clip(m[0]), want)
			case trimmed != want:
				ve.add(line, "%s must be alone on its line", want)
			}
			if tag == "properties" {
				*propsShut = true
			}
		}
	}
	if strings.Contains(lower, "<role") && !isPlainRoleLine(trimmed) {
		for _, m := range reRoleOpen.FindAllString(s, -1) {
			if !reRoleGood.MatchString(m) {
				ve.add(line, "%s: write <role roletype=\"NN\"> with roletype 01-08 first, then optionally recstatus=\"1|2|3\", in double quotes", clip(m))
			}
		}
	}
	if trimmed != "<member>" && strings.Contains(lower, "<member") {
		for _, m := range reMemberTag.FindAllString(s, -1) {
			if m != "<member>" {
				ve.add(line, "%s: <member> takes no attributes (Moodle matches <member> exactly)", clip(m))
			}
		}
	}
	for _, tag := range [...]string{"begin", "end"} {
		checkDates(line, s, lower, tag, ve)
	}
	if strings.Contains(lower, "<person") || strings.Contains(lower, "<group") {
		for _, m := range rePGOpen.FindAllStringSubmatch(s, -1) {
			tag := strings.ToLower(m[1])
			if sm := recstatusRes[tag].FindStringSubmatch(asciiLower(m[0])); sm != nil && sm[1] == "3" {
				ve.add(line, "<%s recstatus=\"3\">: MIM never deletes a %s through the file", tag, map[string]string{"person": "person (Moodle deletes the account by username)", "group": "course (Moodle hides it)"}[tag])
			}
		}
	}
	if strings.Contains(lower, "<userid") {
		for _, m := range reUseridTag.FindAllString(s, -1) {
			if !reUseridOK.MatchString(m) {
				ve.add(line, "%s: authenticationtype must be the only attribute of <userid>, in double quotes", clip(m))
			}
		}
	}
}

// hasTopCloser reports whether a lower-cased line has a closing tag of an
// element Moodle's reader cuts out, allowing spaces after "</".
func hasTopCloser(lower string) bool {
	for from := 0; ; {
		i := strings.Index(lower[from:], "</")
		if i < 0 {
			return false
		}
		rest := strings.TrimLeft(lower[from+i+2:], " \t")
		for _, tag := range [...]string{"group", "person", "membership", "comments", "properties"} {
			if strings.HasPrefix(rest, tag) && (len(rest) == len(tag) || !isWordByte(rest[len(tag)])) {
				return true
			}
		}
		from += i + 2
	}
}

// isPlainRoleLine recognises the role lines the Writer writes.
func isPlainRoleLine(t string) bool {
	const pre = `<role roletype="0`
	if !strings.HasPrefix(t, pre) || len(t) < len(pre)+3 || t[len(pre)] < '1' || t[len(pre)] > '8' {
		return false
	}
	switch t[len(pre)+1:] {
	case `">`, `" recstatus="1">`, `" recstatus="2">`, `" recstatus="3">`:
		return true
	}
	return false
}

// checkDates checks every <begin ...> (or <end ...>) on a line: Moodle reads
// exactly <begin restrict="1">YYYY-MM-DD</begin> and ignores anything else.
func checkDates(line int, s, lower, tag string, ve *ValidationError) {
	open := "<" + tag
	good := open + ` restrict="1">`
	closing := "</" + tag + ">"
	for from := 0; ; {
		i := strings.Index(lower[from:], open)
		if i < 0 {
			return
		}
		i += from
		from = i + len(open)
		if from < len(lower) && isWordByte(lower[from]) {
			continue // <endx>, <beginning>
		}
		rest := s[i:]
		if !strings.HasPrefix(rest, good) || len(rest) < len(good)+10+len(closing) || rest[len(good)+10:len(good)+10+len(closing)] != closing {
			end := strings.IndexByte(rest, '>')
			if end < 0 {
				end = len(rest) - 1
			}
			ve.add(line, "%s: write <%s restrict=\"1\">YYYY-MM-DD</%s> exactly so, on one line; Moodle ignores any other form", clip(rest[:end+1]), tag, tag)
			continue
		}
		if _, err := ParseDate(rest[len(good) : len(good)+10]); err != nil {
			ve.add(line, "<%s>: %v", tag, err)
		}
	}
}

// node is one element of a top-level element's tree.
type node struct {
	name  string
	attrs []xml.Attr
	text  strings.Builder
	kids  []*node
	line  int
}

func (n *node) child(name string) *node {
	for _, k := range n.kids {
		if k.name == name {
			return k
		}
	}
	return nil
}

func (n *node) all(name string) []*node {
	var out []*node
	for _, k := range n.kids {
		if k.name == name {
			out = append(out, k)
		}
	}
	return out
}

func (n *node) attr(name string) (string, bool) {
	for _, a := range n.attrs {
		if a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

func (n *node) textOf(path ...string) string {
	c := n
	for _, p := range path {
		if c = c.child(p); c == nil {
			return ""
		}
	}
	return strings.TrimSpace(c.text.String())
}

// checkStructure re-parses the file with encoding/xml and checks what the
// element tree must look like.
func checkStructure(r io.Reader, sum *Summary, ve *ValidationError) {
	d := xml.NewDecoder(r)
	line := func() int { l, _ := d.InputPos(); return l }
	var (
		rootSeen bool
		rootDone bool
		stage    int // 0 nothing, 1 properties, 2 persons, 3 groups, 4 memberships
		courses  = map[string]int{}
	)
	// malformed reports a parse error at its line.
	malformed := func(err error) {
		var se *xml.SyntaxError
		if errors.As(err, &se) {
			ve.add(se.Line, "not well-formed XML: %s", se.Msg)
		} else {
			ve.add(line(), "not well-formed XML: %v", err)
		}
	}
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			malformed(err)
			return
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if rootDone {
				ve.add(line(), "element <%s> after </enterprise>", t.Name.Local)
				return
			}
			if !rootSeen {
				rootSeen = true
				if t.Name.Local != "enterprise" {
					ve.add(line(), "the root element is <%s>, not <enterprise>", t.Name.Local)
				}
				continue
			}
			n, err := readNode(d, t, line())
			if err != nil {
				malformed(err)
				return
			}
			want := map[string]int{"properties": 1, "person": 2, "group": 3, "membership": 4}[n.name]
			switch {
			case want == 0:
				ve.add(n.line, "unexpected element <%s> in <enterprise>", n.name)
				continue
			case stage == 0 && want != 1:
				ve.add(n.line, "<%s> before <properties>: properties must come first", n.name)
			case want == 1 && stage != 0:
				ve.add(n.line, "a second <properties>")
			case want < stage:
				ve.add(n.line, "<%s> after a later kind of element: the order is properties, persons, groups, memberships", n.name)
			}
			if want > stage {
				stage = want
			}
			switch n.name {
			case "properties":
				checkProperties(n, sum, ve)
			case "person":
				checkPerson(n, sum, ve)
			case "group":
				checkGroup(n, sum, ve)
			case "membership":
				checkMembership(n, sum, ve, courses)
			}
		case xml.EndElement:
			if t.Name.Local != "enterprise" || t.Name.Space != "" {
				ve.add(line(), "</%s> closes <enterprise>", t.Name.Local)
				return
			}
			rootDone = true
		case xml.CharData:
			if rootSeen && len(bytes.TrimSpace(t)) > 0 {
				ve.add(line(), "text %q between elements", clip(string(bytes.TrimSpace(t))))
			}
		case xml.Comment:
			ve.add(line(), "XML comment")
		case xml.Directive:
			ve.add(line(), "XML directive <!%s>", bytes.TrimSpace(t))
		case xml.ProcInst:
			if rootSeen {
				ve.add(line(), "processing instruction <?%s?> inside the document", t.Target)
			}
		}
	}
	switch {
	case !rootSeen:
		ve.add(0, "no <enterprise> element")
	case !rootDone:
		ve.add(line(), "the file ends before </enterprise>")
	}
	if stage == 0 && rootSeen {
		ve.add(0, "no <properties> element")
	}
}

// readNode reads the element start opened into a tree; top-level elements
// are small, so this holds at most one course's membership. It reads raw
// tokens (no namespace processing, a third faster) and matches end tags
// itself; a namespace prefix is refused.
func readNode(d *xml.Decoder, start xml.StartElement, line int) (*node, error) {
	if start.Name.Space != "" {
		return nil, &xml.SyntaxError{Msg: "namespace prefix " + start.Name.Space + ": not used in IMS files for Moodle", Line: line}
	}
	root := &node{name: start.Name.Local, attrs: start.Attr, line: line}
	stack := []*node{root}
	for len(stack) > 0 {
		tok, err := d.RawToken()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		top := stack[len(stack)-1]
		switch t := tok.(type) {
		case xml.StartElement:
			l, _ := d.InputPos()
			if t.Name.Space != "" {
				return nil, &xml.SyntaxError{Msg: "namespace prefix " + t.Name.Space + ": not used in IMS files for Moodle", Line: l}
			}
			k := &node{name: t.Name.Local, attrs: t.Attr, line: l}
			top.kids = append(top.kids, k)
			stack = append(stack, k)
		case xml.EndElement:
			if t.Name.Local != top.name || t.Name.Space != "" {
				l, _ := d.InputPos()
				return nil, &xml.SyntaxError{Msg: "element <" + top.name + "> closed by </" + t.Name.Local + ">", Line: l}
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			top.text.Write(t)
		}
	}
	return root, nil
}

func checkProperties(n *node, sum *Summary, ve *ValidationError) {
	for _, t := range n.all("target") {
		v := t.text.String()
		if strings.TrimSpace(v) == "" {
			ve.add(t.line, "empty <target>")
			continue
		}
		if strings.TrimSpace(v) != v {
			ve.add(t.line, "<target> %q has surrounding spaces: Moodle compares it exactly", v)
		}
		sum.Targets = append(sum.Targets, strings.TrimSpace(v))
	}
	if len(sum.Targets) == 0 {
		ve.add(n.line, "<properties> has no <target>: every file names the site it is for")
	}
}

func checkPerson(n *node, sum *Summary, ve *ValidationError) {
	sum.Persons++
	id := n.textOf("sourcedid", "id")
	if id == "" {
		ve.add(n.line, "<person> without <sourcedid><id>")
	}
	switch rs, _ := n.attr("recstatus"); rs {
	case "", "1", "2":
	case "3":
		// The line pass reports it with its reason.
	default:
		ve.add(n.line, "<person> %s: recstatus %q is not 1 or 2", id, rs)
	}
	if n.textOf("name", "n", "given") == "" || n.textOf("name", "n", "family") == "" {
		ve.add(n.line, "<person> %s: <name><n> needs a non-empty <given> and <family>", id)
	}
	if n.textOf("userid") == "" {
		ve.add(n.line, "<person> %s: empty <userid>", id)
	}
}

func checkGroup(n *node, sum *Summary, ve *ValidationError) {
	sum.Groups++
	if n.textOf("sourcedid", "id") == "" {
		ve.add(n.line, "<group> without <sourcedid><id>")
	}
	if rs, _ := n.attr("recstatus"); rs != "" && rs != "1" && rs != "2" && rs != "3" {
		ve.add(n.line, "<group>: recstatus %q is not 1 or 2", rs)
	}
}

func checkMembership(n *node, sum *Summary, ve *ValidationError, courses map[string]int) {
	sum.Memberships++
	var course string
	if len(n.kids) == 0 || n.kids[0].name != "sourcedid" {
		ve.add(n.line, "<membership> does not start with its course's <sourcedid>: Moodle takes the first <sourcedid> it finds as the course")
	} else if course = n.kids[0].textOf("id"); course == "" {
		ve.add(n.kids[0].line, "<membership> with an empty course id")
	} else if prev, dup := courses[course]; dup {
		ve.add(n.line, "course %s has a second <membership> (the first is at line %d)", course, prev)
	} else {
		courses[course] = n.line
	}
	type key struct{ id, role string }
	seen := map[key]int{}
	for _, k := range n.kids[min(1, len(n.kids)):] {
		switch k.name {
		case "member":
		case "sourcedid":
			ve.add(k.line, "course %s: a second <sourcedid> in the membership", course)
			continue
		default:
			ve.add(k.line, "course %s: unexpected <%s> in <membership>", course, k.name)
			continue
		}
		sum.Members++
		id := k.textOf("sourcedid", "id")
		if len(k.kids) == 0 || k.kids[0].name != "sourcedid" || id == "" {
			ve.add(k.line, "course %s: <member> does not start with a <sourcedid> with an id", course)
		}
		roles := k.all("role")
		if len(roles) != 1 {
			ve.add(k.line, "course %s, user %s: %d <role> elements; write one <member> per role", course, id, len(roles))
			if len(roles) == 0 {
				continue
			}
		}
		role := roles[0]
		roletype, _ := role.attr("roletype")
		if len(role.attrs) == 0 || role.attrs[0].Name.Local != "roletype" {
			ve.add(role.line, "course %s, user %s: roletype must be the first attribute of <role>", course, id)
		} else if !isRoleType(roletype) {
			ve.add(role.line, "course %s, user %s: roletype %q is not 01-08", course, id, roletype)
		}
		rs, _ := role.attr("recstatus")
		if rs != "" && rs != "1" && rs != "2" && rs != "3" {
			ve.add(role.line, "course %s, user %s: role recstatus %q is not 1, 2 or 3", course, id, rs)
		}
		statuses := role.all("status")
		status := ""
		switch {
		case len(statuses) == 0:
			ve.add(role.line, "course %s, user %s: <role> without <status> (Moodle reads a missing status as a drop)", course, id)
		case len(statuses) > 1:
			ve.add(statuses[1].line, "course %s, user %s: more than one <status>", course, id)
		default:
			status = strings.TrimSpace(statuses[0].text.String())
			if status != "0" && status != "1" {
				ve.add(statuses[0].line, "course %s, user %s: <status> %q is not 0 or 1", course, id, status)
			}
		}
		if status == "1" && rs == "3" {
			ve.add(role.line, "course %s, user %s: <status>1 with recstatus=\"3\" contradicts itself (Moodle drops)", course, id)
		}
		if status == "1" && rs != "3" {
			sum.Active++
		} else {
			sum.Drops++
		}
		if tf := role.child("timeframe"); tf != nil {
			var dates [2]Date
			for i, tag := range []string{"begin", "end"} {
				e := tf.child(tag)
				if e == nil {
					continue
				}
				if r, _ := e.attr("restrict"); r != "1" {
					ve.add(e.line, "course %s, user %s: <%s> without restrict=\"1\" is ignored by Moodle", course, id, tag)
				}
				d, err := ParseDate(e.text.String())
				if err != nil {
					ve.add(e.line, "course %s, user %s: <%s>: %v", course, id, tag, err)
					continue
				}
				dates[i] = d
			}
			if !dates[0].IsZero() && !dates[1].IsZero() && !dates[0].Before(dates[1]) {
				ve.add(tf.line, "course %s, user %s: <end> %s is not after <begin> %s", course, id, dates[1], dates[0])
			}
		}
		if ext := role.child("extension"); ext != nil && ext.child("cohort") != nil && ext.textOf("cohort") == "" {
			ve.add(ext.line, "course %s, user %s: empty <cohort>", course, id)
		}
		kk := key{id, roletype}
		if prev, dup := seen[kk]; dup {
			ve.add(k.line, "course %s: user %s has role %s twice (first at line %d)", course, id, roletype, prev)
		} else {
			seen[kk] = k.line
		}
	}
}

// clip shortens quoted file content in a message.
func clip(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
