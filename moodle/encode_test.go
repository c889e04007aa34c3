package moodle

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestFormEncoding(t *testing.T) {
	f := newForm("tok/en+1", "core_user_get_users")
	err := f.params(P(
		"criteria", []Params{P("key", "lastname", "value", "O'Brien & Sons")},
		"options", []Params{P("name", "onlyactive", "value", true)},
		"returngroups", false,
		"ids", []int64{14, 26},
		"nested", map[string]any{"b": 2, "a": Int(1)},
		"skipped", nil,
		"empty", []string{},
		"grade", 80.5,
	))
	if err != nil {
		t.Fatal(err)
	}
	want := "wstoken=tok%2Fen%2B1&wsfunction=core_user_get_users&moodlewsrestformat=json" +
		"&criteria[0][key]=lastname&criteria[0][value]=O%27Brien+%26+Sons" +
		"&options[0][name]=onlyactive&options[0][value]=1&returngroups=0" +
		"&ids[0]=14&ids[1]=26&nested[a]=1&nested[b]=2&grade=80.5"
	if got := string(f.b); got != want {
		t.Errorf("form:\n got %s\nwant %s", got, want)
	}
	if f.vars != 3+2+2+1+2+2+1 {
		t.Errorf("%d variables counted", f.vars)
	}
	if n, err := countVars("members[0]", P("groupid", 1, "userid", 2)); n != 2 || err != nil {
		t.Errorf("countVars: %d, %v", n, err)
	}
	if err := f.param("bad", struct{}{}); err == nil || !strings.Contains(err.Error(), "parameter bad") {
		t.Errorf("an unsupported value: %v", err)
	}
	// Names with characters outside PHP's plain set are escaped; brackets stay.
	if got := escapeName("a b[c&d]"); got != "a+b[c%26d]" {
		t.Errorf("escapeName: %s", got)
	}
}

func TestLenientTypes(t *testing.T) {
	var v struct {
		A, B, C, D Int
		E, F, G, H Bool
		I, J       Float
		K, L, M    Text
		N          *Float
	}
	in := `{"A":42,"B":"42","C":null,"D":"","E":true,"F":1,"G":"0","H":null,"I":"80.43","J":7,"K":1,"L":"x","M":true,"N":null}`
	if err := json.Unmarshal([]byte(in), &v); err != nil {
		t.Fatal(err)
	}
	if v.A != 42 || v.B != 42 || v.C != 0 || v.D != 0 || !bool(v.E) || !bool(v.F) || bool(v.G) || bool(v.H) ||
		v.I != 80.43 || v.J != 7 || v.K != "1" || v.L != "x" || v.M != "true" || v.N != nil {
		t.Errorf("decoded %+v", v)
	}
	for _, bad := range []string{`{"A":"x"}`, `{"A":[1]}`, `{"E":"maybe"}`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("%s decoded without error", bad)
		}
	}
}

func TestBackoff(t *testing.T) {
	c := &Client{backoff: 100 * time.Millisecond, maxBackoff: time.Second}
	for attempt, upper := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 9: time.Second} {
		for range 50 {
			d := c.backoffFor(attempt, 0)
			if d < upper/2 || d > upper {
				t.Fatalf("attempt %d: %s outside [%s, %s]", attempt, d, upper/2, upper)
			}
		}
	}
	if d := c.backoffFor(1, 5*time.Second); d != 5*time.Second {
		t.Errorf("Retry-After 5s: waited %s", d)
	}
	if d := c.backoffFor(1, time.Hour); d != 2*time.Minute {
		t.Errorf("Retry-After 1h: waited %s", d)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		code, message string
		want          Kind
	}{
		{"invalidtoken", "", InvalidToken},
		{"accessexception", "", AccessException},
		{"invalidrecord", "Can't find data record in database table external_functions.", FunctionMissing},
		{"invalidrecord", "Can't find data record in database table groups.", RecordMissing},
		{"invalidparameter", "", InvalidParameter},
		{"nopermissions", "", NoPermissions},
		{"errorcoursecontextnotvalid", "", ContextNotValid},
		{"idnumbertaken", "", Other},
		{"", "TypeError", Other},
	} {
		if got := classify(tc.code, tc.message); got != tc.want {
			t.Errorf("classify(%q, %q) = %v, want %v", tc.code, tc.message, got, tc.want)
		}
	}
}
