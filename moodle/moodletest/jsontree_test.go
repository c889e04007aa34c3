package moodletest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// node is a JSON value with its object keys in the order they were sent,
// numbers as their text (so 100 and 100.0 differ, as they would for a
// strict consumer) and strings decoded.
type node struct {
	kind  byte // o object, a array, s string, n number, b bool, z null
	keys  []string
	vals  []*node
	items []*node
	text  string
}

func parseTree(data []byte) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	n, err := readNode(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("trailing data after the JSON value")
	}
	return n, nil
}

func readNode(dec *json.Decoder) (*node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &node{kind: 'o'}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := readNode(dec)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k.(string))
				n.vals = append(n.vals, v)
			}
			_, err := dec.Token()
			return n, err
		case '[':
			n := &node{kind: 'a'}
			for dec.More() {
				v, err := readNode(dec)
				if err != nil {
					return nil, err
				}
				n.items = append(n.items, v)
			}
			_, err := dec.Token()
			return n, err
		}
	case string:
		return &node{kind: 's', text: t}, nil
	case json.Number:
		return &node{kind: 'n', text: t.String()}, nil
	case bool:
		return &node{kind: 'b', text: fmt.Sprint(t)}, nil
	case nil:
		return &node{kind: 'z'}, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

func (n *node) get(k string) *node {
	if i := slices.Index(n.keys, k); i >= 0 {
		return n.vals[i]
	}
	return nil
}

var kindName = map[byte]string{'o': "object", 'a': "array", 's': "string", 'n': "number", 'b': "bool", 'z': "null"}

// rules say what a comparison may not hold against the simulator: values
// that no State determines (times, ids Moodle allocated, sort orders of a
// site with other history), keys it need not have, and lists whose
// members are compared by shape only.
type rules struct {
	values    map[string]bool // key names whose scalar values are not compared
	keys      map[string]bool // key names skipped entirely
	shapeOnly map[string]bool // key names of lists compared by their first item's shape
}

func set(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// compare returns every difference between got and want under r.
func compare(path string, got, want *node, r rules) []string {
	var diffs []string
	if got.kind != want.kind {
		return []string{fmt.Sprintf("%s: %s, want %s", path, kindName[got.kind], kindName[want.kind])}
	}
	last := path[strings.LastIndexAny(path, ".]")+1:]
	switch got.kind {
	case 'o':
		var gk, wk []string
		for _, k := range got.keys {
			if !r.keys[k] {
				gk = append(gk, k)
			}
		}
		for _, k := range want.keys {
			if !r.keys[k] {
				wk = append(wk, k)
			}
		}
		if !slices.Equal(gk, wk) {
			diffs = append(diffs, fmt.Sprintf("%s: keys %v, want %v", path, gk, wk))
		}
		for _, k := range wk {
			if g := got.get(k); g != nil {
				diffs = append(diffs, compare(path+"."+k, g, want.get(k), r)...)
			}
		}
	case 'a':
		if r.shapeOnly[last] {
			if len(got.items) > 0 && len(want.items) > 0 {
				diffs = append(diffs, compareShape(path+"[0]", got.items[0], want.items[0])...)
			}
			return diffs
		}
		if len(got.items) != len(want.items) {
			diffs = append(diffs, fmt.Sprintf("%s: %d items, want %d", path, len(got.items), len(want.items)))
		}
		for i := 0; i < min(len(got.items), len(want.items)); i++ {
			diffs = append(diffs, compare(fmt.Sprintf("%s[%d]", path, i), got.items[i], want.items[i], r)...)
		}
	default:
		if !r.values[last] && got.text != want.text {
			diffs = append(diffs, fmt.Sprintf("%s: %s %q, want %q", path, kindName[got.kind], got.text, want.text))
		}
	}
	return diffs
}

// compareShape compares kinds and keys only.
func compareShape(path string, got, want *node) []string {
	if got.kind != want.kind {
		return []string{fmt.Sprintf("%s: %s, want %s", path, kindName[got.kind], kindName[want.kind])}
	}
	var diffs []string
	switch got.kind {
	case 'o':
		if !slices.Equal(got.keys, want.keys) {
			diffs = append(diffs, fmt.Sprintf("%s: keys %v, want %v", path, got.keys, want.keys))
		}
		for i, k := range want.keys {
			if g := got.get(k); g != nil {
				diffs = append(diffs, compareShape(path+"."+k, g, want.vals[i])...)
			}
		}
	case 'a':
		if len(got.items) > 0 && len(want.items) > 0 {
			diffs = append(diffs, compareShape(path+"[0]", got.items[0], want.items[0])...)
		}
	}
	return diffs
}
