package load

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sync"
	"unicode/utf8"
)

// plain marks the bytes a string may hold unchanged in the fast path:
// printable ASCII other than '"' and '\\'.
var plain = func() (t [256]bool) {
	for b := 0x20; b < 0x80; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// plainWord reports whether all 8 bytes of x are plain, testing them at once.
func plainWord(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	hasZero := func(v uint64) bool { return (v-ones)&^v&highs != 0 }
	return x&highs == 0 && // ASCII
		(x-0x20*ones)&^x&highs == 0 && // no control character
		!hasZero(x^('"'*ones)) && !hasZero(x^('\\'*ones))
}

// maxPayload and maxOutput keep offsets within int32.
const maxPayload, maxOutput = 256 << 20, 1 << 30

// maxDepth bounds nesting so a hostile payload cannot exhaust the stack.
const maxDepth = 512

// Canonical appends to dst the canonical form of the JSON object src and
// returns the extended buffer:
//
//   - no insignificant white space;
//   - object members sorted by the UTF-8 bytes of their decoded names (that
//     is, by code point), a name used twice in one object is an error;
//   - numbers copied byte for byte as sent (1.50 stays 1.50, 12345678901234567890
//     is not rounded through a float), after checking their grammar;
//   - strings decoded and re-encoded with the fewest escapes: only `"`, `\`
//     and control characters are escaped (\b \f \n \r \t, else \u00xx), never
//     HTML characters or U+2028/U+2029;
//   - the text must be valid UTF-8 and may not contain U+0000 or lone
//     surrogates, which PostgreSQL's jsonb cannot store.
//
// So two sources (or two runs) that read the same thing produce the same bytes
// whatever order, spacing or escaping their drivers chose.
func Canonical(dst, src []byte) ([]byte, error) {
	c := canonPool.Get().(*canonicalizer)
	defer canonPool.Put(c)
	return c.canonical(dst, src)
}

// Hash returns the SHA-256 of the canonical form of the JSON object src
// (the value raw.record.hash holds).
func Hash(src []byte) ([32]byte, error) {
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	out, err := Canonical((*buf)[:0], src)
	*buf = out
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(out), nil
}

var (
	canonPool = sync.Pool{New: func() any { return new(canonicalizer) }}
	bufPool   = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
)

// member is one "name":value of an object, as written to the output.
// It holds no pointers, so sorting members costs no GC write barriers.
type member struct {
	prefix     uint64 // the name's first 8 bytes, big-endian: most comparisons stop here
	start, end int32  // the member's bytes in the output
	idx        int32  // its position in the source
	name       nameRef
}

// nameRef locates a decoded member name: in the source when it had no
// escapes, else in the canonicalizer's names buffer.
type nameRef struct {
	off, n  int32
	escaped bool
}

func (c *canonicalizer) name(r nameRef) []byte {
	if r.escaped {
		return c.names[r.off : r.off+r.n]
	}
	return c.src[r.off : r.off+r.n]
}

func namePrefix(name []byte) uint64 {
	if len(name) >= 8 {
		return binary.BigEndian.Uint64(name)
	}
	var p uint64
	for i := 0; i < 8; i++ {
		p <<= 8
		if i < len(name) {
			p |= uint64(name[i])
		}
	}
	return p
}

func (c *canonicalizer) compare(a, b *member) int {
	switch {
	case a.prefix < b.prefix:
		return -1
	case a.prefix > b.prefix:
		return 1
	}
	return bytes.Compare(c.name(a.name), c.name(b.name))
}

// sortMembers is an insertion sort for the usual few dozen members, and
// pdqsort beyond.
func (c *canonicalizer) sortMembers(ms []member) {
	if len(ms) > 48 {
		slices.SortFunc(ms, func(a, b member) int { return c.compare(&a, &b) })
		return
	}
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && c.compare(&ms[j-1], &ms[j]) > 0; j-- {
			ms[j-1], ms[j] = ms[j], ms[j-1]
		}
	}
}

// canonicalizer holds reusable scratch space; one is used by one goroutine
// at a time.
type canonicalizer struct {
	src     []byte
	pos     int
	depth   int
	members [][]member // a member list per nesting level, reused
	names   []byte     // decoded names that contained escapes
	scratch []byte     // for reordering members
	// layouts remembers the sorted order of the last few lists of member
	// names: records of one entity repeat the same few object shapes, so
	// most objects are put in order without sorting.
	layouts   [8]layout
	nextSlot  int
	layoutKey []byte
	sortedMs  []member
}

// layout is one list of member names (each followed by a 0 byte, which a
// name cannot hold) and the order that sorts it.
type layout struct {
	key   []byte
	order []int32
}

func (c *canonicalizer) canonical(dst, src []byte) ([]byte, error) {
	c.src, c.pos, c.depth, c.names = src, 0, 0, c.names[:0]
	if len(src) > maxPayload || len(dst)+6*len(src) > maxOutput {
		return dst, &CanonicalError{Msg: "the payload is larger than the loader accepts (256 MiB)"}
	}
	c.skipSpace()
	if c.pos >= len(src) || src[c.pos] != '{' {
		return dst, c.errorf("the payload is not a JSON object")
	}
	dst, err := c.value(dst)
	if err != nil {
		return dst, err
	}
	c.skipSpace()
	if c.pos != len(src) {
		return dst, c.errorf("unexpected text after the JSON object")
	}
	return dst, nil
}

// CanonicalError says why a payload is not acceptable JSON and where.
type CanonicalError struct {
	Offset int // byte offset in the payload
	Msg    string
}

func (e *CanonicalError) Error() string {
	return e.Msg + " (at byte " + itoa(e.Offset) + ")"
}

func (c *canonicalizer) errorf(msg string) error {
	return &CanonicalError{Offset: c.pos, Msg: msg}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

func (c *canonicalizer) skipSpace() {
	for c.pos < len(c.src) {
		switch c.src[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *canonicalizer) value(dst []byte) ([]byte, error) {
	c.skipSpace()
	if c.pos >= len(c.src) {
		return dst, c.errorf("unexpected end of JSON")
	}
	switch b := c.src[c.pos]; {
	case b == '{':
		return c.object(dst)
	case b == '[':
		return c.array(dst)
	case b == '"':
		dst, _, err := c.str(dst, false)
		return dst, err
	case b == '-' || (b >= '0' && b <= '9'):
		return c.number(dst)
	case b == 't':
		return c.literal(dst, "true")
	case b == 'f':
		return c.literal(dst, "false")
	case b == 'n':
		return c.literal(dst, "null")
	}
	return dst, c.errorf("invalid character " + quoteByte(c.src[c.pos]) + " where a value was expected")
}

func quoteByte(b byte) string {
	if b >= 0x20 && b < 0x7f {
		return "'" + string(rune(b)) + "'"
	}
	return "byte 0x" + string("0123456789abcdef"[b>>4]) + string("0123456789abcdef"[b&15])
}

func (c *canonicalizer) literal(dst []byte, lit string) ([]byte, error) {
	if !bytes.HasPrefix(c.src[c.pos:], []byte(lit)) {
		return dst, c.errorf("invalid literal (expected " + lit + ")")
	}
	c.pos += len(lit)
	return append(dst, lit...), nil
}

func (c *canonicalizer) number(dst []byte) ([]byte, error) {
	s, i := c.src, c.pos
	start := i
	if s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		c.pos = i
		return dst, c.errorf("invalid number")
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			c.pos = i
			return dst, c.errorf("invalid number: no digits after the decimal point")
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			c.pos = i
			return dst, c.errorf("invalid number: no digits in the exponent")
		}
	}
	c.pos = i
	return append(dst, s[start:i]...), nil
}

func (c *canonicalizer) array(dst []byte) ([]byte, error) {
	if c.depth++; c.depth > maxDepth {
		return dst, c.errorf("JSON nested too deeply")
	}
	c.pos++ // [
	dst = append(dst, '[')
	c.skipSpace()
	if c.pos < len(c.src) && c.src[c.pos] == ']' {
		c.pos++
		c.depth--
		return append(dst, ']'), nil
	}
	for {
		var err error
		if dst, err = c.value(dst); err != nil {
			return dst, err
		}
		c.skipSpace()
		if c.pos >= len(c.src) {
			return dst, c.errorf("unexpected end of JSON in an array")
		}
		switch c.src[c.pos] {
		case ',':
			c.pos++
			dst = append(dst, ',')
		case ']':
			c.pos++
			c.depth--
			return append(dst, ']'), nil
		default:
			return dst, c.errorf("expected ',' or ']' in an array")
		}
	}
}

func (c *canonicalizer) object(dst []byte) ([]byte, error) {
	if c.depth++; c.depth > maxDepth {
		return dst, c.errorf("JSON nested too deeply")
	}
	level := c.depth - 1
	for len(c.members) <= level {
		c.members = append(c.members, nil)
	}
	ms := c.members[level][:0]
	c.pos++ // {
	dst = append(dst, '{')
	c.skipSpace()
	if c.pos < len(c.src) && c.src[c.pos] == '}' {
		c.pos++
		c.depth--
		return append(dst, '}'), nil
	}
	for {
		c.skipSpace()
		if c.pos >= len(c.src) || c.src[c.pos] != '"' {
			return dst, c.errorf("expected a member name in an object")
		}
		start := len(dst)
		var name nameRef
		var err error
		if dst, name, err = c.str(dst, true); err != nil {
			return dst, err
		}
		c.skipSpace()
		if c.pos >= len(c.src) || c.src[c.pos] != ':' {
			return dst, c.errorf("expected ':' after a member name")
		}
		c.pos++
		dst = append(dst, ':')
		if dst, err = c.value(dst); err != nil {
			return dst, err
		}
		ms = append(ms, member{prefix: namePrefix(c.name(name)), start: int32(start), end: int32(len(dst)), name: name})
		c.skipSpace()
		if c.pos >= len(c.src) {
			return dst, c.errorf("unexpected end of JSON in an object")
		}
		if c.src[c.pos] == '}' {
			c.pos++
			break
		}
		if c.src[c.pos] != ',' {
			return dst, c.errorf("expected ',' or '}' in an object")
		}
		c.pos++
		dst = append(dst, ',')
	}
	c.members[level] = ms // keep the grown slice for the next object
	c.depth--
	key := c.layoutKey[:0]
	for i := range ms {
		key = append(append(key, c.name(ms[i].name)...), 0)
	}
	c.layoutKey = key
	for i := range c.layouts {
		if l := &c.layouts[i]; len(l.key) == len(key) && len(l.order) == len(ms) && bytes.Equal(l.key, key) {
			return c.reorder(dst, ms, l.order), nil
		}
	}
	sorted := true
	for i := 1; i < len(ms); i++ {
		switch cmp := c.compare(&ms[i-1], &ms[i]); {
		case cmp == 0:
			return dst, &CanonicalError{Offset: c.pos, Msg: "member name " + quoteName(c.name(ms[i].name)) + " appears twice in one object"}
		case cmp > 0:
			sorted = false
		}
	}
	for i := range ms {
		ms[i].idx = int32(i)
	}
	if !sorted {
		c.sortMembers(ms)
		for i := 1; i < len(ms); i++ {
			if c.compare(&ms[i-1], &ms[i]) == 0 {
				return dst, &CanonicalError{Offset: c.pos, Msg: "member name " + quoteName(c.name(ms[i].name)) + " appears twice in one object"}
			}
		}
		c.remember(ms)
		return c.write(dst, ms), nil
	}
	c.remember(ms)
	return append(dst, '}'), nil
}

// remember keeps the layout in c.layoutKey and the order of the sorted ms.
func (c *canonicalizer) remember(ms []member) {
	l := &c.layouts[c.nextSlot]
	c.nextSlot = (c.nextSlot + 1) % len(c.layouts)
	l.key = append(l.key[:0], c.layoutKey...)
	l.order = l.order[:0]
	for i := range ms {
		l.order = append(l.order, ms[i].idx)
	}
}

// reorder puts ms (in source order) into order and closes the object.
func (c *canonicalizer) reorder(dst []byte, ms []member, order []int32) []byte {
	identity := true
	for i, o := range order {
		identity = identity && int(o) == i
	}
	if identity {
		return append(dst, '}')
	}
	sorted := c.sortedMs[:0]
	for _, o := range order {
		sorted = append(sorted, ms[o])
	}
	c.sortedMs = sorted
	return c.write(dst, sorted)
}

// write rewrites the members' region of dst in the order of ms, commas
// between, and closes the object.
func (c *canonicalizer) write(dst []byte, ms []member) []byte {
	first := ms[0].start
	for _, m := range ms {
		first = min(first, m.start)
	}
	c.scratch = append(c.scratch[:0], dst[first:]...)
	out := dst[:first]
	for i, m := range ms {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, c.scratch[m.start-first:m.end-first]...)
	}
	return append(out, '}')
}

func quoteName(name []byte) string {
	if len(name) > 64 {
		name = name[:64]
	}
	return "\"" + string(name) + "\""
}

// str copies the string at c.pos to dst in canonical form. When wantName is
// set it also returns the decoded text (a slice of src when the string holds
// no escapes, so nothing is copied in the common case).
func (c *canonicalizer) str(dst []byte, wantName bool) ([]byte, nameRef, error) {
	s := c.src
	c.pos++ // opening quote
	dst = append(dst, '"')
	start := c.pos
	// Fast path: printable ASCII with no escapes, copied as is.
	i := c.pos
	for i+8 <= len(s) && plainWord(binary.LittleEndian.Uint64(s[i:])) {
		i += 8
	}
	for i < len(s) && plain[s[i]] {
		i++
	}
	if i < len(s) && s[i] == '"' {
		dst = append(dst, s[start:i]...)
		c.pos = i + 1
		return append(dst, '"'), nameRef{off: int32(start), n: int32(i - start)}, nil
	}
	// Slow path: decode escapes and check UTF-8.
	nameStart := len(c.names)
	escaped := false
	dst = append(dst, s[start:i]...)
	if wantName {
		c.names = append(c.names, s[start:i]...)
	}
	for {
		if i >= len(s) {
			c.pos = i
			return dst, nameRef{}, c.errorf("unterminated string")
		}
		b := s[i]
		switch {
		case b == '"':
			c.pos = i + 1
			dst = append(dst, '"')
			if !wantName {
				return dst, nameRef{}, nil
			}
			if !escaped { // only non-ASCII: the source bytes are the name
				c.names = c.names[:nameStart]
				return dst, nameRef{off: int32(start), n: int32(i - start)}, nil
			}
			return dst, nameRef{off: int32(nameStart), n: int32(len(c.names) - nameStart), escaped: true}, nil
		case b == '\\':
			escaped = true
			r, n, err := c.escape(i)
			if err != nil {
				return dst, nameRef{}, err
			}
			i += n
			dst = appendRune(dst, r)
			if wantName {
				c.names = utf8.AppendRune(c.names, r)
			}
		case b < 0x20:
			c.pos = i
			return dst, nameRef{}, c.errorf("control character in a string (it must be escaped)")
		case b < 0x80:
			dst = append(dst, b)
			if wantName {
				c.names = append(c.names, b)
			}
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n <= 1 {
				c.pos = i
				return dst, nameRef{}, c.errorf("text is not valid UTF-8")
			}
			dst = append(dst, s[i:i+n]...)
			if wantName {
				c.names = append(c.names, s[i:i+n]...)
			}
			i += n
		}
	}
}

// escape decodes the escape sequence at s[i] ('\\') and returns the rune and
// the number of source bytes consumed.
func (c *canonicalizer) escape(i int) (rune, int, error) {
	s := c.src
	if i+1 >= len(s) {
		c.pos = i
		return 0, 0, c.errorf("unterminated escape in a string")
	}
	switch s[i+1] {
	case '"':
		return '"', 2, nil
	case '\\':
		return '\\', 2, nil
	case '/':
		return '/', 2, nil
	case 'b':
		return '\b', 2, nil
	case 'f':
		return '\f', 2, nil
	case 'n':
		return '\n', 2, nil
	case 'r':
		return '\r', 2, nil
	case 't':
		return '\t', 2, nil
	case 'u':
		r, ok := hex4(s, i+2)
		if !ok {
			c.pos = i
			return 0, 0, c.errorf("invalid \\u escape in a string")
		}
		switch {
		case r == 0:
			c.pos = i
			return 0, 0, c.errorf("\\u0000 in a string (PostgreSQL cannot store it)")
		case r >= 0xD800 && r < 0xDC00:
			if i+12 <= len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
				if lo, ok := hex4(s, i+8); ok && lo >= 0xDC00 && lo < 0xE000 {
					return 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00), 12, nil
				}
			}
			c.pos = i
			return 0, 0, c.errorf("lone UTF-16 surrogate in a string")
		case r >= 0xDC00 && r < 0xE000:
			c.pos = i
			return 0, 0, c.errorf("lone UTF-16 surrogate in a string")
		}
		return r, 6, nil
	}
	c.pos = i
	return 0, 0, c.errorf("invalid escape in a string")
}

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, b := range s[i : i+4] {
		r <<= 4
		switch {
		case b >= '0' && b <= '9':
			r |= rune(b - '0')
		case b >= 'a' && b <= 'f':
			r |= rune(b - 'a' + 10)
		case b >= 'A' && b <= 'F':
			r |= rune(b - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// appendRune writes r inside a canonical string: only '"', '\\' and control
// characters are escaped.
func appendRune(dst []byte, r rune) []byte {
	switch r {
	case '"':
		return append(dst, '\\', '"')
	case '\\':
		return append(dst, '\\', '\\')
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	if r < 0x20 {
		const hex = "0123456789abcdef"
		return append(dst, '\\', 'u', '0', '0', hex[r>>4], hex[r&15])
	}
	return utf8.AppendRune(dst, r)
}
