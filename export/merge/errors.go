package merge

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with one pair.
type Problem struct {
	Seq      int // 1-based position in the list
	From, To int64
	Msg      string
}

func (p Problem) String() string {
	return fmt.Sprintf("pair %d (user %d into %d): %s", p.Seq, p.From, p.To, p.Msg)
}

// ValidationError lists every problem of a merge list.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "merge list has %d problem", len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteString("s")
	}
	for i, p := range e.Problems {
		if i == 10 {
			fmt.Fprintf(&b, "; and %d more", len(e.Problems)-10)
			break
		}
		b.WriteString("; ")
		b.WriteString(p.String())
	}
	return b.String()
}

func (e *ValidationError) add(seq int, p Pair, msg string) {
	e.Problems = append(e.Problems, Problem{Seq: seq, From: p.FromUserID, To: p.ToUserID, Msg: msg})
}
