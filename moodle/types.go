package moodle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Moodle's JSON is typed by its return descriptions, but a value's type
// can still differ between versions, plugins and functions (an id sent as
// "42", a flag as 1 or true, a format option's value as 1 or "1"). These
// types accept every such form, so a decode never fails on a quirk.

// Int is an integer sent as a number or a numeric string; null and "" are 0.
type Int int64

// UnmarshalJSON implements json.Unmarshaler.
func (i *Int) UnmarshalJSON(b []byte) error {
	s, isNull, err := scalarText(b)
	if err != nil || isNull || s == "" {
		*i = 0
		return err
	}
	switch s {
	case "true":
		*i = 1
		return nil
	case "false":
		*i = 0
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*i = Int(n)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("moodle: %q is not an integer", s)
	}
	*i = Int(f)
	return nil
}

// Bool is a flag sent as true/false, 1/0 or "1"/"0"; null is false.
type Bool bool

// UnmarshalJSON implements json.Unmarshaler.
func (v *Bool) UnmarshalJSON(b []byte) error {
	s, isNull, err := scalarText(b)
	if err != nil {
		return err
	}
	switch strings.ToLower(s) {
	case "true", "1", "yes":
		*v = true
	case "false", "0", "", "no":
		*v = false
	default:
		if isNull {
			*v = false
			return nil
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			*v = f != 0
			return nil
		}
		return fmt.Errorf("moodle: %q is not a boolean", s)
	}
	return nil
}

// Float is a number sent as a number or a numeric string; null is 0 (use
// *Float where null means "no value").
type Float float64

// UnmarshalJSON implements json.Unmarshaler.
func (f *Float) UnmarshalJSON(b []byte) error {
	s, isNull, err := scalarText(b)
	if err != nil || isNull || s == "" {
		*f = 0
		return err
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("moodle: %q is not a number", s)
	}
	*f = Float(x)
	return nil
}

// Text is a string that Moodle may send as a number or a boolean; it keeps
// the value's text. null is "".
type Text string

// UnmarshalJSON implements json.Unmarshaler.
func (t *Text) UnmarshalJSON(b []byte) error {
	s, _, err := scalarText(b)
	*t = Text(s)
	return err
}

// scalarText returns a JSON scalar's text: a string unquoted, a number or
// boolean as written.
func scalarText(b []byte) (text string, isNull bool, err error) {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return "", true, nil
	case b[0] == '"':
		var s string
		err := json.Unmarshal(b, &s)
		return strings.TrimSpace(s), false, err
	case bytes.Equal(b, []byte("null")):
		return "", true, nil
	case b[0] == '{' || b[0] == '[':
		return "", false, fmt.Errorf("moodle: expected a scalar, got %.20s", b)
	}
	return string(b), false, nil
}

// Warning is an entry of the "warnings" list many functions return beside
// their result: Moodle's way of saying part of a request was ignored.
type Warning struct {
	Item        string `json:"item"`
	ItemID      Int    `json:"itemid"`
	WarningCode string `json:"warningcode"`
	Message     string `json:"message"`
}

func (w Warning) String() string {
	if w.Item != "" {
		return fmt.Sprintf("%s (%s): %s", w.WarningCode, w.Item, w.Message)
	}
	return w.WarningCode + ": " + w.Message
}

// cloneRaw copies the bytes json.Unmarshal lends to UnmarshalJSON.
func cloneRaw(b []byte) json.RawMessage { return append(json.RawMessage(nil), b...) }
