package moodle

import (
	"strconv"

	"github.com/mimwarehouse/mim/extract"
)

// jsonObj builds one JSON object member by member, in the order Moodle's
// return description gives, with each value typed as the web service types
// it (ints as numbers, flags as 0/1 or booleans, text as strings).
type jsonObj struct {
	b []byte
	n int
}

func (o *jsonObj) reset() *jsonObj {
	o.b = append(o.b[:0], '{')
	o.n = 0
	return o
}

func (o *jsonObj) key(k string) {
	if o.n > 0 {
		o.b = append(o.b, ',')
	}
	o.n++
	o.b = extract.AppendJSONString(o.b, k)
	o.b = append(o.b, ':')
}

func (o *jsonObj) str(k, v string) { o.key(k); o.b = extract.AppendJSONString(o.b, v) }
func (o *jsonObj) num(k string, v int64) {
	o.key(k)
	o.b = strconv.AppendInt(o.b, v, 10)
}

// flt writes a float as PHP's json_encode does (shortest form that reads
// back the same).
func (o *jsonObj) flt(k string, v float64) {
	o.key(k)
	o.b = strconv.AppendFloat(o.b, v, 'f', -1, 64)
}

func (o *jsonObj) boolean(k string, v bool) {
	o.key(k)
	o.b = strconv.AppendBool(o.b, v)
}

func (o *jsonObj) null(k string) { o.key(k); o.b = append(o.b, "null"...) }

// raw writes v, already JSON, as the value of k.
func (o *jsonObj) raw(k string, v []byte) { o.key(k); o.b = append(o.b, v...) }

// close ends the object and returns it; the bytes are reused by the next
// reset, so the caller lands or copies them first.
func (o *jsonObj) close() []byte {
	o.b = append(o.b, '}')
	return o.b
}

// jsonList builds a JSON array of values written by the caller.
type jsonList struct {
	b []byte
	n int
}

func (l *jsonList) reset() *jsonList {
	l.b = append(l.b[:0], '[')
	l.n = 0
	return l
}

func (l *jsonList) add(v []byte) {
	if l.n > 0 {
		l.b = append(l.b, ',')
	}
	l.n++
	l.b = append(l.b, v...)
}

func (l *jsonList) close() []byte {
	l.b = append(l.b, ']')
	return l.b
}
