package merge

import (
	"bytes"
	"encoding/csv"
	"errors"
	"strings"
	"testing"
)

func pair(from, to int64) Pair {
	name := func(id int64) string { return "u" + string(rune('a'+id%26)) + strings.Repeat("x", int(id/26)) }
	return Pair{FromUserID: from, ToUserID: to, FromUsername: name(from), ToUsername: name(to),
		FromIDNumber: "SITS" + name(from), ToIDNumber: "SITS" + name(to), Reason: "same SITS student code"}
}

func TestWrite(t *testing.T) {
	ps := []Pair{
		{FromUserID: 812, ToUserID: 4411, FromUsername: "mokaf21x", ToUsername: "mokaf21", FromIDNumber: "", ToIDNumber: "21004567",
			Reason: "same SITS student code", KeepReason: "kept mokaf21: the SITS username", Evidence: `both have studentno 21004567, "Mia" O'Kafor`},
		{FromUserID: 4411, ToUserID: 9000, FromUsername: "mokaf21", ToUsername: "mia.okafor", FromIDNumber: "21004567", ToIDNumber: "21004567",
			Reason: "same UPI, newest account kept"},
	}
	var buf bytes.Buffer
	if err := Write(&buf, ps); err != nil {
		t.Fatal(err)
	}
	want := "seq,from_userid,to_userid,from_username,to_username,from_idnumber,to_idnumber,reason,keep_reason\n" +
		"1,812,4411,mokaf21x,mokaf21,,21004567,same SITS student code,kept mokaf21: the SITS username\n" +
		"2,4411,9000,mokaf21,mia.okafor,21004567,21004567,\"same UPI, newest account kept\",\n"
	if buf.String() != want {
		t.Errorf("file:\n%s\nwant:\n%s", buf.String(), want)
	}
	buf.Reset()
	if err := Write(&buf, ps, WithEvidence()); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if recs[0][9] != "evidence" || recs[1][9] != ps[0].Evidence || len(recs[2]) != 10 {
		t.Errorf("evidence column: %q", recs)
	}
	if FileName("main", 4711) != "merge-main-4711.csv" {
		t.Errorf("FileName = %s", FileName("main", 4711))
	}
}

func TestValidateRefuses(t *testing.T) {
	cases := []struct {
		name  string
		pairs []Pair
		seq   int
		want  string
	}{
		{"same id", []Pair{pair(5, 5)}, 1, "into itself"},
		{"zero id", []Pair{pair(0, 5)}, 1, "positive"},
		{"no to idnumber", []Pair{func() Pair { p := pair(1, 2); p.ToIDNumber = ""; return p }()}, 1, "to_idnumber is empty"},
		{"no reason", []Pair{func() Pair { p := pair(1, 2); p.Reason = " "; return p }()}, 1, "reason is empty"},
		{"newline in reason", []Pair{func() Pair { p := pair(1, 2); p.Reason = "a\nb"; return p }()}, 1, "control character"},
		{"newline in keep_reason", []Pair{func() Pair { p := pair(1, 2); p.KeepReason = "a\rb"; return p }()}, 1, "keep_reason"},
		{"username with spaces", []Pair{func() Pair { p := pair(1, 2); p.ToUsername = " ub"; return p }()}, 1, "surrounding spaces"},
		{"backslash quote", []Pair{func() Pair { p := pair(1, 2); p.Evidence = `x\"y`; return p }()}, 1, "backslash"},
		{"removed twice", []Pair{pair(1, 2), pair(1, 3)}, 2, "already merged away by pair 1"},
		{"chain in the wrong order", []Pair{pair(2, 3), pair(1, 2)}, 2, "already merged away"},
		{"cycle", []Pair{pair(1, 2), pair(2, 1)}, 2, "already merged away"},
		{"id with two usernames", []Pair{pair(1, 2), func() Pair { p := pair(3, 2); p.ToUsername = "other"; return p }()}, 2, "user 2 is"},
		{"username on two ids", []Pair{pair(1, 2), func() Pair { p := pair(3, 4); p.ToUsername = pair(1, 2).ToUsername; return p }()}, 2, "belongs to user"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Validate(c.pairs)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want a ValidationError, got %v", err)
			}
			for _, p := range ve.Problems {
				if p.Seq == c.seq && strings.Contains(p.Msg, c.want) {
					var buf bytes.Buffer
					if Write(&buf, c.pairs) == nil || buf.Len() != 0 {
						t.Errorf("Write wrote a refused list: %q", buf.String())
					}
					return
				}
			}
			t.Errorf("no problem %q on pair %d: %v", c.want, c.seq, err)
		})
	}
}

func TestChainInOrderIsValid(t *testing.T) {
	if err := Validate([]Pair{pair(1, 2), pair(2, 3), pair(4, 3), pair(3, 5)}); err != nil {
		t.Fatal(err)
	}
}

func TestOrder(t *testing.T) {
	// 3→4 must run after 2→3 and 1→3 (which merge into 3); 2→3 after 5→2.
	in := []Pair{pair(3, 4), pair(2, 3), pair(7, 8), pair(1, 3), pair(5, 2)}
	out, err := Order(in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range out {
		got = append(got, string(rune('0'+p.FromUserID))+">"+string(rune('0'+p.ToUserID)))
	}
	if strings.Join(got, " ") != "7>8 1>3 5>2 2>3 3>4" {
		t.Errorf("order %v", got)
	}
	if err := Validate(out); err != nil {
		t.Errorf("ordered list does not validate: %v", err)
	}
	if err := Validate(in); err == nil {
		t.Error("the unordered list validated")
	}
	if _, err := Order([]Pair{pair(1, 2), pair(2, 3), pair(3, 1)}); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: %v", err)
	}
}
