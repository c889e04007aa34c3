package load

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCanonicalForm(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{}`, `{}`},
		{` { "b" : 1 , "a" : [ 1 , 2 , { } , [ ] ] } `, `{"a":[1,2,{},[]],"b":1}`},
		// Nested objects are sorted too; arrays keep their order.
		{`{"z":{"y":1,"x":{"d":null,"c":true}},"a":[{"k":2,"j":1}]}`, `{"a":[{"j":1,"k":2}],"z":{"x":{"c":true,"d":null},"y":1}}`},
		// Numbers exactly as sent: no float round trip.
		{`{"n":12345678901234567890123,"f":1.50,"e":1E+5,"m":-0,"s":0.1e-7}`, `{"e":1E+5,"f":1.50,"m":-0,"n":12345678901234567890123,"s":0.1e-7}`},
		// Strings: escapes decoded, only what must be escaped is.
		{`{"s":"\u00e9\/<>&\u2028"}`, "{\"s\":\"é/<>&\u2028\"}"},
		{`{"s":"a\"b\\c\n\t\u0001\u001F"}`, `{"s":"a\"b\\c\n\t\u0001\u001f"}`},
		{`{"s":"\ud83d\ude00"}`, `{"s":"😀"}`},
		// Names sort by their decoded bytes, whatever their escaping.
		{`{"\u0062":1,"a":2}`, `{"a":2,"b":1}`},
		{`{"é":1,"z":2,"Z":3}`, `{"Z":3,"z":2,"é":1}`},
		{`{"a":"x","ab":"y","":"z"}`, `{"":"z","a":"x","ab":"y"}`},
	}
	for _, c := range cases {
		got, err := Canonical(nil, []byte(c.in))
		if err != nil {
			t.Errorf("Canonical(%s): %v", c.in, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("Canonical(%s)\n got %s\nwant %s", c.in, got, c.want)
		}
		// The canonical form is a fixed point.
		again, err := Canonical(nil, got)
		if err != nil || !bytes.Equal(again, got) {
			t.Errorf("Canonical is not idempotent on %s: %s %v", got, again, err)
		}
	}
}

func TestHashStableAcrossOrderSpacingAndEscaping(t *testing.T) {
	variants := []string{
		`{"id":107,"username":"s23100111","roles":[{"roleid":5,"shortname":"student"}],"grade":72.50,"big":9007199254740993}`,
		`{ "username" : "s23100111", "big": 9007199254740993, "roles" : [ { "shortname":"student", "roleid" : 5 } ],
		   "grade": 72.50, "id": 107 }`,
		`{"\u0069d":107,"username":"s2310011\u0031","roles":[{"roleid":5,"shortname":"stud\u0065nt"}],"grade":72.50,"big":9007199254740993}`,
	}
	want, err := Hash([]byte(variants[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range variants[1:] {
		got, err := Hash([]byte(v))
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("hash differs for %s", v)
		}
	}
	// A different number text is a different value as sent: 72.5 is not 72.50,
	// and 9007199254740993 must not collapse onto 9007199254740992 as a float64 would.
	for _, v := range []string{
		`{"id":107,"username":"s23100111","roles":[{"roleid":5,"shortname":"student"}],"grade":72.5,"big":9007199254740993}`,
		`{"id":107,"username":"s23100111","roles":[{"roleid":5,"shortname":"student"}],"grade":72.50,"big":9007199254740992}`,
		`{"id":"107","username":"s23100111","roles":[{"roleid":5,"shortname":"student"}],"grade":72.50,"big":9007199254740993}`,
	} {
		got, err := Hash([]byte(v))
		if err != nil {
			t.Fatal(err)
		}
		if got == want {
			t.Errorf("hash equal for a different payload %s", v)
		}
	}
}

func TestCanonicalRejects(t *testing.T) {
	cases := map[string]string{
		`[1,2]`:                "not a JSON object",
		`"x"`:                  "not a JSON object",
		``:                     "not a JSON object",
		`{"a":1,"a":2}`:        `"a" appears twice`,
		`{"b":1,"a":2,"b":3}`:  `"b" appears twice`,
		`{"\u0061":1,"a":2}`:   `"a" appears twice`,
		`{"a":1} x`:            "after the JSON object",
		`{"a":01}`:             "expected ',' or '}'",
		`{"a":1.}`:             "after the decimal point",
		`{"a":1e}`:             "exponent",
		`{"a":-}`:              "invalid number",
		`{"a":+1}`:             "invalid character",
		`{"a":tru}`:            "invalid literal",
		`{"a":"x\u0000y"}`:     "\\u0000",
		`{"a":"\ud800"}`:       "surrogate",
		`{"a":"\udc00x"}`:      "surrogate",
		`{"a":"\x"}`:           "invalid escape",
		`{"a":"\u12"}`:         "invalid \\u escape",
		"{\"a\":\"x\ny\"}":     "control character",
		"{\"a\":\"\xff\"}":     "not valid UTF-8",
		`{"a":"unterminated}`:  "unterminated string",
		`{"a":[1,2}`:           "expected ',' or ']'",
		`{"a" 1}`:              "expected ':'",
		`{a:1}`:                "expected a member name",
		`{"a":1,}`:             "expected a member name",
		`{"a":{"b":[{"c":1}]}`: "unexpected end",
		strings.Repeat(`{"a":`, 600) + `1` + strings.Repeat(`}`, 600): "nested too deeply",
	}
	for in, want := range cases {
		_, err := Canonical(nil, []byte(in))
		var ce *CanonicalError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), want) {
			t.Errorf("Canonical(%.60q) = %v, want an error containing %q", in, err, want)
		}
	}
}

// FuzzCanonical checks, for any input encoding/json accepts as an object,
// that the canonical form is valid JSON meaning the same thing (numbers
// compared as text), and a fixed point.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{`{}`, `{"b":[1,2.0,{"y":null,"x":"\u00e9"}],"a":-0.5e3}`, `{"k":"\"\\\/\b\f\n\r\t"}`,
		`{"a":{"a":{"a":[[],{}]}}}`, `{"😀":"\ud83d\ude00","":true,"z":false}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonical(nil, in)
		var want any
		dec := json.NewDecoder(bytes.NewReader(in))
		dec.UseNumber()
		stdErr := dec.Decode(&want)
		if _, isObj := want.(map[string]any); stdErr != nil || !isObj || dec.More() {
			if err == nil {
				// We may be stricter than encoding/json (duplicate names, NUL,
				// invalid UTF-8), never looser.
				t.Fatalf("accepted %q that encoding/json rejects or that is not an object", in)
			}
			return
		}
		if err != nil {
			return // stricter on duplicates, NUL, surrogates, invalid UTF-8: fine
		}
		var got any
		dec = json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("canonical form %q of %q is not JSON: %v", out, in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("canonical form changed the meaning:\n in %q\nout %q", in, out)
		}
		again, err := Canonical(nil, out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not a fixed point: %q -> %q (%v)", out, again, err)
		}
	})
}

// The layout cache must give exactly what sorting gives, whatever came before.
func TestCanonicalLayoutCacheMatchesSorting(t *testing.T) {
	inputs := []string{
		`{"b":1,"a":{"y":1,"x":2}}`, `{"b":2,"a":{"x":3,"y":4}}`, `{"a":{"y":5,"x":6},"b":3}`,
		`{"b":1,"a":{"y":1,"x":2},"c":0}`, `{"b":1,"a":{"y":1,"x":2}}`, `{"b":1,"b":2}`, `{"b":1,"a":[{"y":1,"x":2}]}`,
	}
	var shared canonicalizer
	for round := 0; round < 3; round++ {
		for _, in := range inputs {
			var fresh canonicalizer
			want, werr := fresh.canonical(nil, []byte(in))
			got, gerr := shared.canonical(nil, []byte(in))
			if string(got) != string(want) || (werr == nil) != (gerr == nil) {
				t.Errorf("round %d, %s: cached %s %v, fresh %s %v", round, in, got, gerr, want, werr)
			}
		}
	}
}
