package moodletest

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// formVar is one name=value pair of a request, in the order it was sent.
type formVar struct{ name, value string }

// parseForm splits an application/x-www-form-urlencoded string into its
// pairs, keeping their order (PHP counts and truncates them in order).
// Malformed escapes are kept literally, as PHP does.
func parseForm(s string) []formVar {
	var vars []formVar
	for s != "" {
		var part string
		part, s, _ = strings.Cut(s, "&")
		if part == "" {
			continue
		}
		name, value, _ := strings.Cut(part, "=")
		vars = append(vars, formVar{unescape(name), unescape(value)})
	}
	return vars
}

func unescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return strings.ReplaceAll(s, "+", " ")
}

// phpArray is a PHP array built from bracketed form names: an ordered map
// whose integer-looking keys are kept in their canonical decimal form.
type phpArray struct {
	keys []string
	vals map[string]any // string or *phpArray
	next int64          // the key a[] appends at
}

func newPHPArray() *phpArray { return &phpArray{vals: map[string]any{}} }

func (a *phpArray) get(k string) (any, bool) {
	v, ok := a.vals[k]
	return v, ok
}

func (a *phpArray) set(k string, v any) {
	if _, ok := a.vals[k]; !ok {
		a.keys = append(a.keys, k)
	}
	a.vals[k] = v
	if n, err := strconv.ParseInt(k, 10, 64); err == nil && strconv.FormatInt(n, 10) == k && n >= a.next {
		a.next = n + 1
	}
}

func (a *phpArray) del(k string) {
	if _, ok := a.vals[k]; !ok {
		return
	}
	delete(a.vals, k)
	for i, key := range a.keys {
		if key == k {
			a.keys = append(a.keys[:i], a.keys[i+1:]...)
			break
		}
	}
}

// splitName turns "a[b][c]" into [a b c] the way PHP does; a "[" that is
// never closed makes the rest of the name literal, and spaces and dots in
// the top-level name become underscores.
func splitName(name string) []string {
	i := strings.IndexByte(name, '[')
	if i <= 0 {
		return []string{phpTopName(name)}
	}
	parts := []string{phpTopName(name[:i])}
	rest := name[i:]
	for strings.HasPrefix(rest, "[") {
		j := strings.IndexByte(rest, ']')
		if j < 0 {
			// PHP keeps an unclosed bracket as part of the top-level name.
			parts[0] = phpTopName(name[:i]) + "_" + name[i+1:]
			return parts[:1]
		}
		parts = append(parts, rest[1:j])
		rest = rest[j+1:]
	}
	return parts
}

func phpTopName(s string) string {
	return strings.NewReplacer(" ", "_", ".", "_").Replace(s)
}

// buildParams nests the pairs into one PHP array, later pairs winning.
func buildParams(vars []formVar) *phpArray {
	root := newPHPArray()
	for _, v := range vars {
		path := splitName(v.name)
		cur := root
		for i, k := range path {
			if k == "" {
				k = strconv.FormatInt(cur.next, 10)
			}
			if i == len(path)-1 {
				cur.set(k, v.value)
				break
			}
			child, ok := cur.get(k)
			arr, isArr := child.(*phpArray)
			if !ok || !isArr {
				arr = newPHPArray()
				cur.set(k, arr)
			}
			cur = arr
		}
	}
	return root
}

// exception is a Moodle error as webservice/rest/server.php reports it.
type exception struct {
	class     string
	errorcode string // empty for PHP errors such as TypeError (no errorcode key)
	message   string
	debuginfo string // sent only when the site's debugging is on
}

func (e *exception) Error() string { return e.errorcode + ": " + e.message }

func invalidParam(debug string) *exception {
	return &exception{`core\exception\invalid_parameter_exception`, "invalidparameter", "Invalid parameter value detected", debug}
}

func missingRecord(table, sql string, args ...any) *exception {
	var b strings.Builder
	b.WriteString(sql)
	b.WriteString("\n[array (\n")
	for i, a := range args {
		switch v := a.(type) {
		case string:
			fmt.Fprintf(&b, "  %d => '%s',\n", i, v)
		default:
			fmt.Fprintf(&b, "  %d => %v,\n", i, v)
		}
	}
	b.WriteString(")]")
	return &exception{"dml_missing_record_exception", "invalidrecord",
		"Can't find data record in database table " + table + ".", b.String()}
}

func moodleException(code, message string) *exception {
	return &exception{`core\exception\moodle_exception`, code, message, ""}
}

func courseContextError(courseID int64, reason string) *exception {
	return moodleException("errorcoursecontextnotvalid", fmt.Sprintf(
		"You cannot execute functions in the course context (course id:%d). The context error message was: %s", courseID, reason))
}

func noPermission(what string) *exception {
	return &exception{`core\exception\required_capability_exception`, "nopermissions",
		"Sorry, but you do not currently have permissions to do that (" + what + ").", ""}
}

func codingError(message, debug string) *exception {
	return &exception{`core\exception\coding_exception`, "codingerror",
		"Coding error detected, it must be fixed by a programmer: " + message, debug}
}

// Parameter descriptions, after Moodle's external_value,
// external_single_structure and external_multiple_structure.
type pkind uint8

const (
	pValue pkind = iota
	pSingle
	pMultiple
)

type presence uint8

const (
	required presence = iota
	optional
	withDefault
)

type pdesc struct {
	kind    pkind
	typ     string // int, bool, float, text, raw, ... (the name Moodle's errors use)
	pres    presence
	def     any
	fields  []pfield
	content *pdesc
}

type pfield struct {
	name string
	desc *pdesc
}

func val(typ string) *pdesc { return &pdesc{kind: pValue, typ: typ} }

func (d *pdesc) opt() *pdesc { c := *d; c.pres = optional; return &c }
func (d *pdesc) dflt(v any) *pdesc {
	c := *d
	c.pres = withDefault
	c.def = v
	return &c
}

func single(fields ...pfield) *pdesc { return &pdesc{kind: pSingle, fields: fields} }
func multiple(content *pdesc) *pdesc { return &pdesc{kind: pMultiple, content: content} }
func f(name string, d *pdesc) pfield { return pfield{name, d} }

// validate checks v against d as external_api::validate_parameters does and
// returns the cleaned value: int64, bool, float64, string, []any, or
// map[string]any for a single structure (absent optional keys absent).
func validate(d *pdesc, v any) (any, *exception) {
	switch d.kind {
	case pSingle:
		arr, ok := v.(*phpArray)
		if !ok {
			return nil, invalidParam(fmt.Sprintf("Only arrays accepted. The bad value is: '%v'", v))
		}
		res := make(map[string]any, len(d.fields))
		seen := make(map[string]bool, len(d.fields))
		for _, fd := range d.fields {
			child, present := arr.get(fd.name)
			seen[fd.name] = true
			if !present {
				switch fd.desc.pres {
				case required:
					return nil, invalidParam("Missing required key in single structure: " + fd.name)
				case withDefault:
					res[fd.name] = fd.desc.def
				}
				continue
			}
			cv, ex := validate(fd.desc, child)
			if ex != nil {
				return nil, invalidParam(fd.name + " => " + ex.message + ": " + ex.debuginfo)
			}
			res[fd.name] = cv
		}
		var extra []string
		for _, k := range arr.keys {
			if !seen[k] {
				extra = append(extra, k)
			}
		}
		if len(extra) > 0 {
			return nil, invalidParam("Unexpected keys (" + strings.Join(extra, ", ") + ") detected in parameter array.")
		}
		return res, nil
	case pMultiple:
		arr, ok := v.(*phpArray)
		if !ok {
			return nil, invalidParam(fmt.Sprintf("Only arrays accepted. The bad value is: '%v'", v))
		}
		res := make([]any, 0, len(arr.keys))
		for _, k := range arr.keys {
			cv, ex := validate(d.content, arr.vals[k])
			if ex != nil {
				return nil, ex
			}
			res = append(res, cv)
		}
		return res, nil
	}
	s, ok := v.(string)
	if !ok {
		return nil, invalidParam("Scalar type expected, array or object received.")
	}
	bad := invalidParam(`Invalid external api parameter: the value is "` + s + `", the server was expecting "` + d.typ + `" type`)
	switch d.typ {
	case "int":
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != s {
			return nil, bad
		}
		return n, nil
	case "bool":
		switch s {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
		return nil, bad
	case "float":
		x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, bad
		}
		return x, nil
	}
	return s, nil
}

// args reads validated parameters.
type args map[string]any

func (a args) int(k string) int64 {
	n, _ := a[k].(int64)
	return n
}

func (a args) str(k string) string {
	s, _ := a[k].(string)
	return s
}

func (a args) boolean(k string) bool {
	b, _ := a[k].(bool)
	return b
}

func (a args) has(k string) bool {
	_, ok := a[k]
	return ok
}

func (a args) list(k string) []any {
	l, _ := a[k].([]any)
	return l
}

// items returns the single structures of a multiple one.
func (a args) items(k string) []args {
	l := a.list(k)
	out := make([]args, 0, len(l))
	for _, v := range l {
		m, _ := v.(map[string]any)
		out = append(out, args(m))
	}
	return out
}

func (a args) ints(k string) []int64 {
	l := a.list(k)
	out := make([]int64, 0, len(l))
	for _, v := range l {
		n, _ := v.(int64)
		out = append(out, n)
	}
	return out
}

func sortedKeys[M ~map[K]V, K int64 | string, V any](m M) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}
