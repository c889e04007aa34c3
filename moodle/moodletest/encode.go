package moodletest

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"
)

// enc writes one response value in the order Moodle's return descriptions
// give. Handlers write through it once; the JSON and XML encoders turn the
// same calls into what webservice/rest/server.php sends for each format.
type enc interface {
	obj()
	list()
	end()
	key(k string)
	str(s string)
	num(i int64)
	flt(f float64)
	boolean(b bool)
	null()
}

// out adds keyed shorthands to an encoder.
type out struct{ enc }

func (o out) kstr(k, v string)       { o.key(k); o.str(v) }
func (o out) knum(k string, v int64) { o.key(k); o.num(v) }
func (o out) kflt(k string, v float64) {
	o.key(k)
	o.flt(v)
}
func (o out) kbool(k string, v bool) { o.key(k); o.boolean(v) }
func (o out) knull(k string)         { o.key(k); o.null() }
func (o out) kobj(k string)          { o.key(k); o.obj() }
func (o out) klist(k string)         { o.key(k); o.list() }

// kint01 writes a boolean the way Moodle sends PARAM_INT flags: 1 or 0.
func (o out) kint01(k string, v bool) {
	o.key(k)
	if v {
		o.num(1)
	} else {
		o.num(0)
	}
}

// kfltp writes a nullable float.
func (o out) kfltp(k string, v *float64) {
	o.key(k)
	if v == nil {
		o.null()
	} else {
		o.flt(*v)
	}
}

// jsonEnc writes JSON the way PHP's json_encode does with no flags: "/" is
// escaped as "\/" and every non-ASCII character as \uXXXX, so a payload
// landed from the simulator is byte-for-byte what Moodle would have sent.
type jsonEnc struct {
	b *bytes.Buffer
	// n counts the items written at each open level; afterKey suppresses
	// the comma before a value that follows its key.
	n        []int
	kind     []byte // the closing bracket of each open level
	afterKey bool
}

func newJSONEnc(b *bytes.Buffer) *jsonEnc {
	return &jsonEnc{b: b, n: make([]int, 0, 8), kind: make([]byte, 0, 8)}
}

func (e *jsonEnc) sep() {
	if e.afterKey {
		e.afterKey = false
		return
	}
	if l := len(e.n); l > 0 {
		if e.n[l-1] > 0 {
			e.b.WriteByte(',')
		}
		e.n[l-1]++
	}
}

func (e *jsonEnc) obj() {
	e.sep()
	e.b.WriteByte('{')
	e.n = append(e.n, 0)
	e.kind = append(e.kind, '}')
}

func (e *jsonEnc) list() {
	e.sep()
	e.b.WriteByte('[')
	e.n = append(e.n, 0)
	e.kind = append(e.kind, ']')
}

func (e *jsonEnc) end() {
	l := len(e.n) - 1
	e.b.WriteByte(e.kind[l])
	e.n, e.kind = e.n[:l], e.kind[:l]
}

func (e *jsonEnc) key(k string) {
	e.sep()
	phpString(e.b, k)
	e.b.WriteByte(':')
	e.afterKey = true
}

func (e *jsonEnc) str(s string) { e.sep(); phpString(e.b, s) }
func (e *jsonEnc) num(i int64) {
	e.sep()
	var tmp [24]byte
	e.b.Write(strconv.AppendInt(tmp[:0], i, 10))
}
func (e *jsonEnc) flt(f float64) { e.sep(); e.b.WriteString(phpFloat(f)) }
func (e *jsonEnc) boolean(v bool) {
	e.sep()
	if v {
		e.b.WriteString("true")
	} else {
		e.b.WriteString("false")
	}
}
func (e *jsonEnc) null() { e.sep(); e.b.WriteString("null") }

// phpFloat formats a float as Moodle's JSON shows it: shortest round-trip
// digits, whole numbers without a fraction (grademax 100, graderaw 80.43).
func phpFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

const hexDigits = "0123456789abcdef"

// safeASCII marks the bytes json_encode writes as they are.
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '/'
	}
	return t
}()

// phpString writes s as a JSON string escaped like json_encode.
func phpString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf && safeASCII[c] {
			j := i + 1
			for j < len(s) && s[j] < utf8.RuneSelf && safeASCII[s[j]] {
				j++
			}
			b.WriteString(s[i:j])
			i = j
			continue
		}
		if c < utf8.RuneSelf {
			switch {
			case c == '"':
				b.WriteString(`\"`)
			case c == '\\':
				b.WriteString(`\\`)
			case c == '/':
				b.WriteString(`\/`)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			case c == '\b':
				b.WriteString(`\b`)
			case c == '\f':
				b.WriteString(`\f`)
			case c < 0x20:
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xf])
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r == utf8.RuneError && size == 1 {
			// json_encode fails on invalid UTF-8; Moodle never stores it.
			r = 0xfffd
		}
		if r >= 0x10000 {
			r -= 0x10000
			writeU(b, 0xd800+(r>>10))
			writeU(b, 0xdc00+(r&0x3ff))
			continue
		}
		writeU(b, r)
	}
	b.WriteByte('"')
}

func writeU(b *bytes.Buffer, r rune) {
	b.WriteString(`\u`)
	b.WriteByte(hexDigits[(r>>12)&0xf])
	b.WriteByte(hexDigits[(r>>8)&0xf])
	b.WriteByte(hexDigits[(r>>4)&0xf])
	b.WriteByte(hexDigits[r&0xf])
}

// xmlEnc writes Moodle's REST XML: <SINGLE> for objects, <MULTIPLE> for
// lists, <KEY name=".."> around each field and <VALUE> around scalars, one
// element per line as server.php writes them; booleans become 1 or 0.
type xmlEnc struct {
	b     *bytes.Buffer
	stack []byte // 'o' object, 'l' list, 'k' key
}

func (e *xmlEnc) closeKey() {
	if l := len(e.stack); l > 0 && e.stack[l-1] == 'k' {
		e.stack = e.stack[:l-1]
		e.b.WriteString("</KEY>\n")
	}
}

func (e *xmlEnc) obj()  { e.b.WriteString("<SINGLE>\n"); e.stack = append(e.stack, 'o') }
func (e *xmlEnc) list() { e.b.WriteString("<MULTIPLE>\n"); e.stack = append(e.stack, 'l') }
func (e *xmlEnc) end() {
	top := e.stack[len(e.stack)-1]
	e.stack = e.stack[:len(e.stack)-1]
	if top == 'o' {
		e.b.WriteString("</SINGLE>\n")
	} else {
		e.b.WriteString("</MULTIPLE>\n")
	}
	e.closeKey()
}
func (e *xmlEnc) key(k string) {
	e.b.WriteString(`<KEY name="`)
	e.b.WriteString(xmlEscape(k))
	e.b.WriteString(`">`)
	e.stack = append(e.stack, 'k')
}
func (e *xmlEnc) value(s string) {
	e.b.WriteString("<VALUE>")
	e.b.WriteString(xmlEscape(s))
	e.b.WriteString("</VALUE>\n")
	e.closeKey()
}
func (e *xmlEnc) str(s string)  { e.value(s) }
func (e *xmlEnc) num(i int64)   { e.value(strconv.FormatInt(i, 10)) }
func (e *xmlEnc) flt(f float64) { e.value(phpFloat(f)) }
func (e *xmlEnc) boolean(v bool) {
	if v {
		e.value("1")
	} else {
		e.value("0")
	}
}
func (e *xmlEnc) null() {
	e.b.WriteString("<VALUE null=\"null\"/>\n")
	e.closeKey()
}

// xmlEscape is PHP's htmlspecialchars with ENT_COMPAT: & < > and ".
func xmlEscape(s string) string {
	if !strings.ContainsAny(s, `&<>"`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
