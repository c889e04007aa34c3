package moodle

import (
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Param is one named argument of a web-service function.
type Param struct {
	Name  string
	Value any
}

// Params are a function's arguments, in order. A value may be a string, a
// bool (sent as 1 or 0: Moodle rejects "true"), any integer or float type,
// Params or map[string]any (a structure: name[key]=...), or a slice of any
// of these (a list: name[0]=..., name[1]=...). A nil value or an empty
// list sends nothing, which Moodle reads as "not given".
type Params []Param

// P builds Params from alternating names and values:
// P("courseid", 14, "options", ...).
func P(kv ...any) Params {
	if len(kv)%2 != 0 {
		panic("moodle.P: odd number of arguments")
	}
	ps := make(Params, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		ps = append(ps, Param{Name: kv[i].(string), Value: kv[i+1]})
	}
	return ps
}

// form is a request body under construction. PHP drops form variables
// beyond max_input_vars silently, so the body counts them.
type form struct {
	b    []byte
	vars int
}

// newForm starts a body with the protocol's own variables first, so that
// a truncation could never drop them.
func newForm(token, function string) *form {
	f := &form{b: make([]byte, 0, 256)}
	f.add("wstoken", url.QueryEscape(token))
	f.add("wsfunction", url.QueryEscape(function))
	f.add("moodlewsrestformat", "json")
	return f
}

// add appends name=value; both are already escaped.
func (f *form) add(name, escapedValue string) {
	if len(f.b) > 0 {
		f.b = append(f.b, '&')
	}
	f.b = append(f.b, name...)
	f.b = append(f.b, '=')
	f.b = append(f.b, escapedValue...)
	f.vars++
}

// escapeName escapes a variable name but keeps PHP's brackets readable.
func escapeName(name string) string {
	if strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '[' || r == ']')
	}) < 0 {
		return name
	}
	return strings.NewReplacer("%5B", "[", "%5D", "]").Replace(url.QueryEscape(name))
}

// param appends one value under name in PHP's bracket form.
func (f *form) param(name string, v any) error {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		f.add(escapeName(name), url.QueryEscape(x))
	case Text:
		f.add(escapeName(name), url.QueryEscape(string(x)))
	case bool:
		f.add(escapeName(name), boolDigit(x))
	case Bool:
		f.add(escapeName(name), boolDigit(bool(x)))
	case int:
		f.add(escapeName(name), strconv.Itoa(x))
	case int64:
		f.add(escapeName(name), strconv.FormatInt(x, 10))
	case int32:
		f.add(escapeName(name), strconv.FormatInt(int64(x), 10))
	case Int:
		f.add(escapeName(name), strconv.FormatInt(int64(x), 10))
	case uint:
		f.add(escapeName(name), strconv.FormatUint(uint64(x), 10))
	case uint64:
		f.add(escapeName(name), strconv.FormatUint(x, 10))
	case float64:
		f.add(escapeName(name), strconv.FormatFloat(x, 'f', -1, 64))
	case float32:
		f.add(escapeName(name), strconv.FormatFloat(float64(x), 'f', -1, 32))
	case Float:
		f.add(escapeName(name), strconv.FormatFloat(float64(x), 'f', -1, 64))
	case Params:
		for _, p := range x {
			if err := f.param(name+"["+p.Name+"]", p.Value); err != nil {
				return err
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := f.param(name+"["+k+"]", x[k]); err != nil {
				return err
			}
		}
	case []int64:
		for i, n := range x {
			f.add(escapeName(name+"["+strconv.Itoa(i)+"]"), strconv.FormatInt(n, 10))
		}
	case []string:
		for i, s := range x {
			f.add(escapeName(name+"["+strconv.Itoa(i)+"]"), url.QueryEscape(s))
		}
	default:
		rv := reflect.ValueOf(v)
		switch rv.Kind() {
		case reflect.Slice, reflect.Array:
			for i := 0; i < rv.Len(); i++ {
				if err := f.param(name+"["+strconv.Itoa(i)+"]", rv.Index(i).Interface()); err != nil {
					return err
				}
			}
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			f.add(escapeName(name), strconv.FormatInt(rv.Int(), 10))
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.add(escapeName(name), strconv.FormatUint(rv.Uint(), 10))
		case reflect.String:
			f.add(escapeName(name), url.QueryEscape(rv.String()))
		default:
			return fmt.Errorf("parameter %s: cannot send a %T", name, v)
		}
	}
	return nil
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// params appends every parameter.
func (f *form) params(ps Params) error {
	for _, p := range ps {
		if err := f.param(p.Name, p.Value); err != nil {
			return err
		}
	}
	return nil
}

// countVars returns how many form variables v becomes.
func countVars(name string, v any) (int, error) {
	f := &form{}
	err := f.param(name, v)
	return f.vars, err
}
