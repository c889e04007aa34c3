package moodle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// marshal encodes v as compact JSON without HTML escaping.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// kv is one key MIM adds to a payload; its name starts with "mim_".
type kv struct {
	key   string
	value any
}

// withKeys returns the JSON object obj as Moodle sent it with MIM's keys
// appended; obj itself is not modified.
func withKeys(obj json.RawMessage, kvs ...kv) (json.RawMessage, error) {
	body := bytes.TrimSpace(obj)
	if len(body) < 2 || body[0] != '{' || body[len(body)-1] != '}' {
		return nil, errors.New("the payload is not a JSON object")
	}
	inner := bytes.TrimSpace(body[1 : len(body)-1])
	out := make([]byte, 0, len(body)+32*len(kvs))
	out = append(out, body[:len(body)-1]...)
	for i, p := range kvs {
		if !strings.HasPrefix(p.key, "mim_") {
			return nil, fmt.Errorf("key %q: MIM's own keys start with mim_", p.key)
		}
		v, err := marshal(p.value)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", p.key, err)
		}
		if i > 0 || len(inner) > 0 {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, p.key...)
		out = append(out, '"', ':')
		out = append(out, v...)
	}
	return append(out, '}'), nil
}

// member is one name/value of a JSON object, the value as sent.
type member struct {
	name  string
	value json.RawMessage
}

// members splits a JSON object into its members, in order.
func members(obj []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("the payload is not a JSON object")
	}
	var out []member
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := t.(string)
		if !ok {
			return nil, errors.New("the payload is not a JSON object")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("member %q: %w", name, err)
		}
		out = append(out, member{name, v})
	}
	return out, nil
}

// object writes members as a JSON object.
func object(ms []member) ([]byte, error) {
	b := []byte{'{'}
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		n, err := marshal(m.name)
		if err != nil {
			return nil, err
		}
		b = append(b, n...)
		b = append(b, ':')
		b = append(b, m.value...)
	}
	return append(b, '}'), nil
}

// gradeOnly reports whether a member of a grade report's item belongs to
// one user's grade rather than to the item: the grade* keys (but the
// item's range, grademin and grademax, belongs to both), feedback,
// percentageformatted and status.
func gradeOnly(name string) bool {
	switch name {
	case "grademin", "grademax":
		return false
	case "feedback", "feedbackformat", "percentageformatted", "status":
		return true
	}
	return strings.HasPrefix(name, "grade")
}

// splitGradeItem splits one item of gradereport_user_get_grade_items'
// answer for one user into the grade item (without the user's keys) and
// the user's grade on it (grademin and grademax in both).
func splitGradeItem(raw json.RawMessage) (item, grade []byte, err error) {
	ms, err := members(raw)
	if err != nil {
		return nil, nil, err
	}
	var im, gm []member
	for _, m := range ms {
		switch {
		case m.name == "grademin" || m.name == "grademax":
			im, gm = append(im, m), append(gm, m)
		case gradeOnly(m.name):
			gm = append(gm, m)
		default:
			im = append(im, m)
		}
	}
	if item, err = object(im); err != nil {
		return nil, nil, err
	}
	if grade, err = object(gm); err != nil {
		return nil, nil, err
	}
	return item, grade, nil
}
