// Package merge writes the merge list for tool_mergeusers
// (docs/formats.md §4): ordered pairs of Moodle accounts on one site,
// the account to remove and the account to keep, with the usernames a
// gathering must re-check before merging (moodle-side/tool_mergeusers reads
// this file), why MIM takes the two for one person and why it keeps that
// account. Chains (A into B, then B into C) are allowed only in that order.
package merge

import (
	"container/heap"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Pair is one proposed merge: FromUserID's account is merged into ToUserID's
// and then suspended by the plugin.
type Pair struct {
	FromUserID, ToUserID     int64  // Moodle user.id on the site
	FromUsername, ToUsername string // current usernames; the gathering refuses the pair if they no longer match the ids
	FromIDNumber, ToIDNumber string // for review; ToIDNumber is the SIS identity the feeds use
	Reason                   string // why the accounts are one person, e.g. "same SITS student code"
	KeepReason               string // why ToUserID is the account kept, e.g. "kept jdoe19: the SITS username"
	Evidence                 string // optional detail for the reviewer; written only WithEvidence
}

// Header is the file's header (without the optional evidence column).
var Header = []string{"seq", "from_userid", "to_userid", "from_username", "to_username", "from_idnumber", "to_idnumber", "reason", "keep_reason"}

// FileName is the file's name for a site and run: merge-<site>-<runid>.csv.
func FileName(site string, runID int64) string {
	return "merge-" + site + "-" + strconv.FormatInt(runID, 10) + ".csv"
}

// Option changes what Write writes.
type Option func(*options)

type options struct{ evidence bool }

// WithEvidence adds an evidence column after reason, for human review.
func WithEvidence() Option { return func(o *options) { o.evidence = true } }

// Write validates the pairs and writes them in the given order, numbered
// from 1. Nothing is written if any pair is refused.
func Write(w io.Writer, pairs []Pair, opts ...Option) error {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := Validate(pairs); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	header := Header
	if o.evidence {
		header = append(append([]string(nil), Header...), "evidence")
	}
	if err := cw.Write(header); err != nil {
		return fmt.Errorf("writing merge list: %w", err)
	}
	rec := make([]string, len(header))
	for i, p := range pairs {
		rec[0] = strconv.Itoa(i + 1)
		rec[1] = strconv.FormatInt(p.FromUserID, 10)
		rec[2] = strconv.FormatInt(p.ToUserID, 10)
		rec[3], rec[4] = p.FromUsername, p.ToUsername
		rec[5], rec[6] = p.FromIDNumber, p.ToIDNumber
		rec[7], rec[8] = p.Reason, p.KeepReason
		if o.evidence {
			rec[9] = p.Evidence
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("writing merge list: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("writing merge list: %w", err)
	}
	return nil
}

// Validate checks every pair and the order of the list: ids positive and
// different; usernames, the kept account's idnumber and a reason present
// and every value writable; each account shown with one username and
// idnumber throughout; no account merged away twice; and no account appearing after
// the pair that merged it away (a chain A→B, B→C must come in that order,
// and a cycle can never be ordered). The error is a *ValidationError.
func Validate(pairs []Pair) error {
	ve := &ValidationError{}
	type who struct{ username, idnumber string }
	accounts := map[int64]who{}
	byName := map[string]int64{}
	removedAt := map[int64]int{} // user id -> seq of the pair that merged it away
	for i, p := range pairs {
		seq := i + 1
		bad := func(format string, args ...any) { ve.add(seq, p, fmt.Sprintf(format, args...)) }
		if p.FromUserID <= 0 || p.ToUserID <= 0 {
			bad("user ids must be positive")
			continue
		}
		if p.FromUserID == p.ToUserID {
			bad("merges an account into itself")
			continue
		}
		for _, f := range []struct{ name, v string }{
			{"from_username", p.FromUsername}, {"to_username", p.ToUsername}, {"to_idnumber", p.ToIDNumber}, {"reason", p.Reason},
		} {
			if strings.TrimSpace(f.v) == "" {
				bad("%s is empty", f.name)
			}
		}
		for _, f := range []struct{ name, v string }{
			{"from_username", p.FromUsername}, {"to_username", p.ToUsername}, {"from_idnumber", p.FromIDNumber},
			{"to_idnumber", p.ToIDNumber}, {"reason", p.Reason}, {"keep_reason", p.KeepReason}, {"evidence", p.Evidence},
		} {
			if msg := checkValue(f.v); msg != "" {
				bad("%s %q %s", f.name, f.v, msg)
			} else if f.name != "reason" && f.name != "keep_reason" && f.name != "evidence" && strings.TrimSpace(f.v) != f.v {
				bad("%s %q has surrounding spaces", f.name, f.v)
			}
		}
		for _, a := range []struct {
			id             int64
			name, idnumber string
		}{{p.FromUserID, p.FromUsername, p.FromIDNumber}, {p.ToUserID, p.ToUsername, p.ToIDNumber}} {
			if prev, ok := accounts[a.id]; ok && (prev.username != a.name || prev.idnumber != a.idnumber) {
				bad("user %d is %q (idnumber %q) here but %q (idnumber %q) in an earlier pair", a.id, a.name, a.idnumber, prev.username, prev.idnumber)
			}
			accounts[a.id] = who{a.name, a.idnumber}
			if other, ok := byName[a.name]; ok && other != a.id && a.name != "" {
				bad("username %q belongs to user %d here but to user %d in an earlier pair", a.name, a.id, other)
			}
			byName[a.name] = a.id
		}
		if at, gone := removedAt[p.FromUserID]; gone {
			bad("user %d was already merged away by pair %d", p.FromUserID, at)
		}
		if at, gone := removedAt[p.ToUserID]; gone {
			bad("merges into user %d, which pair %d already merged away (a chain must run A→B before B→C)", p.ToUserID, at)
		}
		if _, gone := removedAt[p.FromUserID]; !gone {
			removedAt[p.FromUserID] = seq
		}
	}
	if len(ve.Problems) > 0 {
		return ve
	}
	return nil
}

// Order returns the pairs in an order the plugin can run them: a pair that
// merges into an account comes before the pair that merges that account
// away; otherwise the given order is kept. A cycle cannot be ordered.
func Order(pairs []Pair) ([]Pair, error) {
	// Edge i→j: pair i's kept account is pair j's removed account.
	byFrom := map[int64][]int{}
	for j, p := range pairs {
		byFrom[p.FromUserID] = append(byFrom[p.FromUserID], j)
	}
	indeg := make([]int, len(pairs))
	next := make([][]int, len(pairs))
	for i, p := range pairs {
		for _, j := range byFrom[p.ToUserID] {
			if j != i {
				next[i] = append(next[i], j)
				indeg[j]++
			}
		}
	}
	ready := &intHeap{}
	for i := range pairs {
		if indeg[i] == 0 {
			heap.Push(ready, i)
		}
	}
	out := make([]Pair, 0, len(pairs))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		out = append(out, pairs[i])
		for _, j := range next[i] {
			if indeg[j]--; indeg[j] == 0 {
				heap.Push(ready, j)
			}
		}
	}
	if len(out) != len(pairs) {
		var stuck []string
		for i, d := range indeg {
			if d > 0 {
				stuck = append(stuck, fmt.Sprintf("%d→%d", pairs[i].FromUserID, pairs[i].ToUserID))
			}
		}
		return nil, fmt.Errorf("ordering merge list: the pairs %s form a cycle", strings.Join(stuck, ", "))
	}
	return out, nil
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// checkValue says why a value cannot go into the file, or "".
func checkValue(v string) string {
	if !utf8.ValidString(v) {
		return "is not valid UTF-8"
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return "contains a control character or line break"
		}
	}
	if strings.Contains(v, `\"`) || strings.HasSuffix(v, `\`) {
		return `has a backslash before a quote or at the end, which PHP's CSV reader misreads`
	}
	return ""
}
