package extract

import (
	"encoding/json"
	"testing"
)

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `quo"te`, `back\slash`, "tab\tnew\nline\r", "\x00\x01\x1f", "<b>&amp;</b>", "Ó Briain 王 😀", "\u2028"} {
		got := AppendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil || back != s {
			t.Errorf("AppendJSONString(%q) = %s: decodes to %q, %v", s, got, back, err)
		}
	}
	if got := string(AppendJSONString(nil, "<a&b>")); got != `"<a&b>"` {
		t.Errorf("HTML must not be escaped: %s", got)
	}
}
